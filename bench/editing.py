"""Benchmark: what an edit costs against a cold render, on a 48-scene, 1080×1920 storyboard
with the offline providers. Each edit is a scene operation (flows/editing.py) rendered the way
`reelflow scene …` renders it; the goal is each edit ≤ 0.25× the cold render.

    .venv/bin/python bench/editing.py [--scenes 48] [--short-side 1080]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.prefect_defaults import apply_prefect_defaults  # noqa: E402

apply_prefect_defaults()

from flows.editing import EditScene, RetakeScene, TrimScene, apply  # noqa: E402
from tasks.storyboard import Line, Scene, Storyboard, VideoRequest  # noqa: E402

FACTS = ["tides rise", "the moon pulls", "the sun helps", "bays funnel water", "spring tides",
         "neap tides", "tidal bores", "tide pools"]


def storyboard(scenes: int) -> Storyboard:
    from tasks.providers.local_planner import LocalPlanner

    script = "\n\n".join(f"Scene {n}: {FACTS[n % len(FACTS)]}, and here is why it matters."
                         for n in range(1, scenes + 1))
    return LocalPlanner().plan(VideoRequest(script=script, topic="How tides work")).storyboard


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=48)
    parser.add_argument("--short-side", type=int, default=1080)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="reelflow-bench-editing-"))
    os.environ.update(REELFLOW_STORE=str(workdir / "store"), REELFLOW_OUT=str(workdir / "out"),
                      REELFLOW_SHORT_SIDE=str(args.short_side))
    from flows.options import RenderOptions
    from flows.video import render_storyboard
    from tasks.ffmpeg import probe

    render_storyboard(Storyboard(title="warm up", scenes=[Scene(
        id="w", order=0, lines=[Line(text="Warm up.")], visual_prompt="x", duration=1)]),
        RenderOptions(short_side=64))  # starts Prefect's server: the timings are the renders alone

    board = storyboard(args.scenes)
    scenes = board.ordered_scenes()
    middle, later, early = scenes[len(scenes) // 2], scenes[len(scenes) * 2 // 3], scenes[5]
    results = {}

    def timed(name: str, edited: Storyboard):
        started = time.perf_counter()
        summary = render_storyboard(edited)
        seconds = time.perf_counter() - started
        made = [node for node in summary.nodes if node.status == "generated"]
        results[name] = {"seconds": round(seconds, 1),
                         "generated": sorted(node.id for node in made if node.kind != "publish"),
                         "segments": sum(node.kind == "segment" for node in made)}
        return summary

    cold = timed("cold", board)
    manifest = json.loads(cold.manifest.read_text())
    clip = next(n for n in manifest["nodes"] if n["id"] == f"{later.id}-clip")
    from cache import open_store

    clip_s = probe(open_store(str(workdir / "store")).blob_path(clip["outputs"]["clip"])).duration
    narrated = apply(board, [EditScene(scene=middle.id,
                                       narration="Scene edited: the moon does most of the pulling.")])
    timed("narration edit", narrated)
    trimmed = apply(narrated, [TrimScene(scene=later.id, start=0.4, end=round(clip_s - 0.3, 2))])
    timed("trim", trimmed)
    timed("retake", apply(trimmed, [RetakeScene(scene=early.id)]))

    video_s = probe(cold.video).duration
    cold_s = results["cold"]["seconds"]
    print(f"storyboard: {args.scenes} scenes, video {video_s:.1f} s, "
          f"short side {args.short_side}, offline providers")
    for name, result in results.items():
        ratio = "" if name == "cold" else f"   ÷ cold = {result['seconds'] / cold_s:.3f}"
        print(f"{name:16s} {result['seconds']:7.1f} s{ratio}   nodes generated: "
              f"{len(result['generated'])} ({result['segments']} segments)")
    out = ROOT / "bench" / "results" / f"editing-{args.scenes}.json"
    out.write_text(json.dumps({"scenes": args.scenes, "short_side": args.short_side,
                               "video_s": round(video_s, 1), "results": results}, indent=2))
    print(out)


if __name__ == "__main__":
    main()
