"""kill -9 at random points of a render, then render again: the store stays consistent, no
published folder is ever half-written, and every node finished before the kill is reused.

`make test` runs a fixed-seed handful of kill points; `make soak` runs many more.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess

import pytest

from cache import open_store
from tests.test_cli_input import REELFLOW, run

PUBLISHED = {"manifest.json", "storyboard.json", "subtitles.ass", "video.mp4"}


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


def render(env, board_file, kill_after: float | None):
    """Render; with `kill_after`, SIGKILL the whole process group after that many seconds."""
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
    finished = {record.key for record in open_store(str(workspace["store"])).records()}
    open_store.cache_clear()

    summary = render(env, board_file, kill_after=None)

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
