"""Resource limits: 200 scenes render at 320×568 in bounded memory, and temporary files are
removed whether a render succeeds or fails.

The peak memory figure (the largest process of the render's tree, ffmpeg included) is written
to $REELFLOW_TEST_ARTIFACTS/resource-limits.json for RELIABILITY.md."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cache import open_store
from tasks.compose import segments
from tasks.ffmpeg import count_frames, ffmpeg_exe, probe
from tasks.storyboard import Storyboard
from tests.pacing import paced_seconds
from tests.test_cli_input import REELFLOW, run

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("REELFLOW_TEST_ARTIFACTS", REPO / "test-artifacts"))
SCENES = 200
# The largest process of a 200-scene render may use this much. Before compose worked in
# segments its one ffmpeg process held a decoder per scene: 1.5 GB at this size.
PEAK_RSS_LIMIT_MB = 1024

# Runs a command and reports the peak resident memory of its largest descendant (ffmpeg
# runs are waited for by their parent, so they count).
PEAK_RSS = """
import json, resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(json.dumps({"rc": code,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}),
      file=sys.stderr)
"""


def storyboard(scenes: int) -> str:
    return json.dumps({"title": "Many small scenes", "scenes": [
        {"id": f"s{n:03d}", "order": n, "lines": [{"text": f"Scene {n} is short."}],
         "visual_prompt": f"a small picture, number {n}", "on_screen_text": f"Scene {n}",
         "duration": 1.2}
        for n in range(1, scenes + 1)]})


@pytest.fixture
def env(cli_env, prefect_api_url, tmp_path):
    temp = tmp_path / "system-tmp"  # the render's TMPDIR: it must be empty afterwards
    temp.mkdir()
    return {**cli_env, "PREFECT_API_URL": prefect_api_url, "TMPDIR": str(temp)}


def leftovers(env: dict, workspace: dict[str, Path]) -> list[str]:
    """Temporary files a finished render left: in TMPDIR, the store's tmp/, or the output
    folder (half-assembled folders are dot-named)."""
    places = [Path(env["TMPDIR"]), workspace["store"] / "tmp"]
    found = [str(path) for place in places if place.exists() for path in place.iterdir()]
    out = workspace["out"]
    return found + ([str(p) for p in out.iterdir() if p.name.startswith(".")] if out.exists() else [])


def test_two_hundred_scenes_render_in_bounded_memory(env, workspace, tmp_path):
    board = tmp_path / "board.json"
    board.write_text(storyboard(SCENES))
    measured = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, REELFLOW, "render", str(board), "--short-side", "320",
         "--json"], env={**env, "REELFLOW_FPS": "30"}, capture_output=True, text=True,
        timeout=1200)
    figures = json.loads(measured.stderr.strip().splitlines()[-1])
    assert figures["rc"] == 0, measured.stderr[-2000:]

    summary = json.loads(measured.stdout)
    video = Path(summary["video"])
    info = probe(video)
    assert (info.width, info.height) == (320, 568)
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert info.duration == pytest.approx(
        paced_seconds(manifest, open_store(str(workspace["store"]))), abs=0.1)
    assert count_frames(video) == pytest.approx(info.duration * 30, abs=3)  # AAC pads its end
    # tts, image, clip per scene; the segments; compose; publish
    assert summary["generated"] == 3 * SCENES + len(segments(Storyboard.model_validate_json(
        board.read_text()))) + 2
    assert leftovers(env, workspace) == []

    figures.update(scenes=SCENES, size="320x568", fps=30, video_s=round(info.duration, 1))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "resource-limits.json").write_text(json.dumps(figures, indent=2))
    print(f"\n200 scenes at 320x568: peak RSS {figures['peak_rss_mb']:.0f} MB")
    assert figures["peak_rss_mb"] < PEAK_RSS_LIMIT_MB, figures


def test_a_failed_render_leaves_no_temporary_files_and_the_rerun_reuses_its_work(
        env, workspace, tmp_path):
    """ffmpeg fails while joining the composed segments: the run fails naming compose, every
    scratch file is gone, nothing is published, and the next run only composes again."""
    failing = tmp_path / "ffmpeg"
    failing.write_text("#!/bin/sh\n"
                       'for arg in "$@"; do case "$arg" in */segments.txt)\n'
                       '  echo "simulated failure" >&2; exit 1;; esac; done\n'
                       f'exec "{ffmpeg_exe()}" "$@"\n')
    failing.chmod(failing.stat().st_mode | stat.S_IXUSR)
    board = tmp_path / "board.json"
    board.write_text(storyboard(3))

    failed = run(["render", str(board), "--json"], {**env, "IMAGEIO_FFMPEG_EXE": str(failing)})
    assert failed.returncode == 1
    assert any(line.startswith("error: compose") for line in failed.stderr.splitlines()), \
        failed.stderr[-2000:]
    assert leftovers(env, workspace) == []
    assert not workspace["out"].exists() or not any(workspace["out"].iterdir())
    assert run(["cache", "verify"], env).returncode == 0

    rerun = run(["render", str(board), "--json"], env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    generated = [node["id"] for node in json.loads(rerun.stdout)["nodes"]
                 if node["status"] == "generated"]
    assert generated == ["compose", "publish"]
    assert leftovers(env, workspace) == []
