"""kill -9 during a render, then render again: the store stays consistent, no published folder
is ever half-written, and every node finished before the kill is reused.

Two kinds of kill point: at a random moment (two in a row, on the render's clock), and at an
exact call inside one phase of the work (tests/fakes/killpoint: the Nth speech, picture, clip,
blob write, compose step or publish copy), chosen at random from a seed. `make test` runs a
fixed-seed handful of each; `make soak` runs many more.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from cache import open_store
from tests.test_cli_input import REELFLOW, run

PUBLISHED = {"history.json", "manifest.json", "storyboard.json", "subtitles.ass", "video.mp4"}
KILLPOINT = Path(__file__).parent / "fakes" / "killpoint"
# Phase → (module, function, how many calls a 3-scene render makes, only calls naming this).
PHASES = {
    "speech": ("tasks.providers.espeak", "EspeakSpeech.synthesize", 3, ""),
    "image": ("tasks.providers.local_image", "LocalImage.generate", 3, ""),
    "clip": ("tasks.providers.kenburns", "KenBurnsAnimator.animate", 3, ""),
    # A complete, fsynced blob about to be renamed into place (16 are written in all).
    "blob write": ("os", "replace", 16, "/blobs/"),
    # 1: before the picture is encoded (s001-s003 are one segment); 2: before the soundtrack
    # is mixed; 3: before the segments are joined to it (its loudness passes run in
    # tasks.loudness).
    "compose": ("tasks.montage", "run_ffmpeg", 3, ""),
    # Copying the video (1) or the subtitles (2) into the folder being assembled.
    "publish": ("shutil", "copyfile", 2, ".incoming-"),
}


def storyboard(seed: int) -> dict:
    texts = [f"Crash test {seed}: the first scene.", "The second scene speaks.",
             "And a third one closes."]
    return {"title": f"Crash {seed}", "scenes": [
        {"id": f"s{n:03d}", "order": n, "lines": [{"text": text}],
         "visual_prompt": f"picture {seed} {n}", "duration": 2.0}
        for n, text in enumerate(texts)]}


@pytest.fixture
def env(cli_env, prefect_api_url):
    return {**cli_env, "PREFECT_API_URL": prefect_api_url}


def render(env, board_file, kill_after: float | None = None):
    """Render; with `kill_after`, SIGKILL the whole process group after that many seconds.
    None when the render was killed, by the test or by a kill point."""
    process = subprocess.Popen([REELFLOW, "render", str(board_file), "--json"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        process.wait(timeout=kill_after)  # the fault injection: the render's clock, not a sync
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None
    stdout, stderr = process.communicate()
    if process.returncode == -signal.SIGKILL:
        return None
    assert process.returncode == 0, stderr
    return json.loads(stdout)


def published_folders_are_whole(out) -> None:
    if not out.exists():
        return
    for folder in out.iterdir():
        if not folder.name.startswith("."):  # staging folders are never a published name
            assert {p.name for p in folder.iterdir()} == PUBLISHED, folder


def kill_and_resume(env, workspace, tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    board_file = tmp_path / f"board{seed}.json"
    board_file.write_text(json.dumps(storyboard(seed)))
    for _ in range(2):  # two crashes in a row, at different points
        render(env, board_file, kill_after=rng.uniform(1.0, 9.0))
        assert run(["cache", "verify"], env).returncode == 0
        published_folders_are_whole(workspace["out"])
    resume_without_redoing(env, workspace, board_file)


def resume_without_redoing(env, workspace, board_file) -> None:
    finished = {record.key for record in open_store(str(workspace["store"])).records()}
    open_store.cache_clear()

    summary = render(env, board_file)

    manifest = json.loads(open(summary["manifest"]).read())
    regenerated = {n["key"] for n in manifest["nodes"] if n["status"] == "generated" and n["key"]}
    assert not regenerated & finished  # nothing finished before a kill was paid for again
    published_folders_are_whole(workspace["out"])
    assert run(["cache", "verify"], env).returncode == 0


@pytest.mark.parametrize("seed", [11, 23])
def test_renders_killed_at_random_points_resume_without_redoing_finished_nodes(
        env, workspace, tmp_path, seed):
    kill_and_resume(env, workspace, tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 110))
def test_soak_renders_killed_at_random_points(env, workspace, tmp_path, seed):
    kill_and_resume(env, workspace, tmp_path, seed)


def kill_in_phase_and_resume(env, workspace, tmp_path, phase: str, call: int) -> None:
    module, function, _, text = PHASES[phase]
    board_file = tmp_path / f"board-{phase}-{call}.json"
    board_file.write_text(json.dumps(storyboard(hash((phase, call)) % 10_000)))
    killing = {**env, "PYTHONPATH": str(KILLPOINT),
               "REELFLOW_TEST_KILL_AT": f"{module}:{function}:{call}:{text}"}
    assert render(killing, board_file) is None, f"the render ended before {phase} call {call}"
    assert run(["cache", "verify"], env).returncode == 0
    published_folders_are_whole(workspace["out"])
    scratch = list(workspace["out"].glob(".*")) if workspace["out"].exists() else []
    assert bool(scratch) == (phase == "publish")  # killed while assembling its folder
    for path in scratch:  # as if the crash was long ago: the next publish sweeps it
        os.utime(path, (1, 1))
    resume_without_redoing(env, workspace, board_file)
    assert not list(workspace["out"].glob(".*"))


@pytest.mark.parametrize("phase", PHASES)
def test_a_render_killed_inside_each_phase_resumes_without_redoing_finished_nodes(
        env, workspace, tmp_path, phase):
    call = random.Random(phase).randint(1, PHASES[phase][2])
    kill_in_phase_and_resume(env, workspace, tmp_path, phase, call)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(200, 220))
def test_soak_renders_killed_inside_random_phases(env, workspace, tmp_path, seed):
    rng = random.Random(seed)
    phase = rng.choice(list(PHASES))
    kill_in_phase_and_resume(env, workspace, tmp_path, phase, rng.randint(1, PHASES[phase][2]))
