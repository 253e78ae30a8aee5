"""Benchmark: a 6-scene, 1080×1920 storyboard with the offline providers (about 22 s: each
scene its speech plus the pad), measured side by side in one run against the floor (one raw
libx264 encode of a still image at the same size, settings and length) and against the same
composition done with MoviePy; and the published soundtrack's loudness.

    make bench          # or: .venv/bin/python bench/run.py [--short-side 1080] [--skip-moviepy]
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

from tasks.storyboard import Line, Scene, Storyboard  # noqa: E402

NARRATION = [
    "Honeybees turn flower nectar into honey, one drop at a time.",
    "A forager visits hundreds of flowers on a single trip.",
    "Back at the hive, workers pass the nectar from mouth to mouth.",
    "They fan their wings to dry it until it turns thick and sweet.",
    "Then they seal each cell with a tiny cap of fresh wax.",
    "One spoon of honey is the life's work of twelve bees.",
]
EDITED = "Each spoonful of honey holds the whole life's work of twelve bees."


def storyboard() -> Storyboard:
    """The offline planner's storyboard of NARRATION (its scene lengths and on-screen texts, as
    a user's script run gets them), with one scene for each camera move."""
    from tasks.providers.local_planner import LocalPlanner
    from tasks.storyboard import VideoRequest

    planned = LocalPlanner().plan(VideoRequest(script="\n\n".join(NARRATION), scenes=6,
                                               topic="How bees make honey"))
    motions = ["zoom_in", "pan_right", "zoom_out", "pan_left", "pan_up", "pan_down"]
    return planned.storyboard.model_copy(update={"music": True, "scenes": [
        scene.model_copy(update={"camera": motion})
        for scene, motion in zip(planned.storyboard.ordered_scenes(), motions)]})


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def provider_calls(summary) -> dict[str, int]:
    calls = {}
    for node in summary.nodes:
        if node.status == "generated" and node.kind in ("plan", "tts", "image", "clip"):
            calls[node.kind] = calls.get(node.kind, 0) + 1
    return calls


def floor_encode(width: int, height: int, fps: int, seconds: float, workdir: Path) -> float:
    """One encode of a fixed still: a picture of its own, so that the floor does not move when
    the offline look changes (an encode of a flat card is a quarter faster than of soft blobs)."""
    from PIL import Image

    from tasks.ffmpeg import FINAL_VIDEO_ARGS, run_ffmpeg

    still = workdir / "still.png"
    Image.effect_mandelbrot((width, height), (-2.2, -1.6, 1.0, 1.6), 60).convert("RGB").save(still)
    _, elapsed = timed(run_ffmpeg, ["-loop", "1", "-framerate", str(fps), "-i", str(still),
                                    "-t", str(seconds), *FINAL_VIDEO_ARGS,
                                    str(workdir / "floor.mp4")], what="encode the floor")
    return elapsed


def moviepy_compose(summary, board: Storyboard, fps: int, workdir: Path) -> float:
    """The same clips and narration, crossfaded and encoded with MoviePy's frame loop.

    It does less than reelflow's compose (no subtitles, no music, no loudness pass), so the
    comparison flatters MoviePy.
    """
    from moviepy import (AudioFileClip, CompositeAudioClip, CompositeVideoClip, VideoFileClip,
                         vfx)

    from config.settings import load_settings
    from tasks.ffmpeg import FINAL_VIDEO_ARGS
    from cache import open_store

    store = open_store(load_settings().store)
    manifest = json.loads(summary.manifest.read_text())
    outputs = {node["id"]: node["outputs"] for node in manifest["nodes"]}
    pad = next(node for node in manifest["nodes"] if node["kind"] == "compose")["params"]["pad"]
    fade, start, layers, voices = 0.4, 0.0, [], []
    for index, scene in enumerate(board.ordered_scenes()):
        clip = VideoFileClip(str(store.blob_path(outputs[f"{scene.id}-clip"]["clip"])))
        clip = clip.with_start(start)
        if index:
            clip = clip.with_effects([vfx.CrossFadeIn(fade)])
        layers.append(clip)
        voice = AudioFileClip(str(store.blob_path(outputs[f"{scene.id}-l1-tts"]["audio"])))
        voices.append(voice.with_start(start))
        start += voice.duration + pad - fade  # as reelflow paces it: the speech, then the pad
    video = CompositeVideoClip(layers).with_audio(CompositeAudioClip(voices))
    preset = FINAL_VIDEO_ARGS[FINAL_VIDEO_ARGS.index("-preset") + 1]
    crf = FINAL_VIDEO_ARGS[FINAL_VIDEO_ARGS.index("-crf") + 1]
    _, elapsed = timed(video.write_videofile, str(workdir / "moviepy.mp4"), fps=fps,
                       codec="libx264", preset=preset, audio_codec="aac",
                       ffmpeg_params=["-crf", crf, "-pix_fmt", "yuv420p"], logger=None)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short-side", type=int, default=1080)
    parser.add_argument("--skip-moviepy", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="reelflow-bench-"))
    os.environ.update(REELFLOW_STORE=str(workdir / "store"), REELFLOW_OUT=str(workdir / "out"),
                      REELFLOW_SHORT_SIDE=str(args.short_side))
    from config.settings import load_settings
    from flows.options import RenderOptions
    from flows.video import render_storyboard
    from tasks.ffmpeg import probe

    settings = load_settings()
    board = storyboard()
    width, height = board.aspect.size(settings.short_side)

    render_storyboard(Storyboard(title="warm up", scenes=[Scene(
        id="w", order=0, lines=[Line(text="Warm up.")], visual_prompt="x", duration=1)]),
        RenderOptions(short_side=64))  # starts Prefect's server, so the timings below are the render alone

    cold, cold_s = timed(render_storyboard, board)
    cold_manifest = json.loads(cold.manifest.read_text())  # before a rerun rewrites it
    cold_nodes, loudness = cold_manifest["nodes"], cold_manifest["loudness"]
    video_s = probe(cold.video).duration
    floor = floor_encode(width, height, settings.fps, video_s, workdir)
    again, again_s = timed(render_storyboard, board)
    scenes = list(board.scenes)
    scenes[2] = scenes[2].model_copy(update={"lines": [Line(text=EDITED)]})
    edited, edited_s = timed(render_storyboard, board.model_copy(update={"scenes": scenes}))
    # The composition: its segments (which may overlap one another) and the join.
    compose_s = sum(node["seconds"] for node in cold_nodes if node["kind"] in ("segment", "compose"))

    print(f"storyboard: 6 scenes, video {video_s:.1f} s, {width}x{height} @ {settings.fps} fps")
    print(f"floor (raw libx264 encode of a still)     {floor:6.1f} s")
    print(f"cold render                               {cold_s:6.1f} s   ÷ floor = {cold_s / floor:.2f}")
    print(f"no-change rerun                           {again_s:6.1f} s   ÷ cold  = {again_s / cold_s:.3f}"
          f"   provider calls: {sum(provider_calls(again).values())}")
    print(f"one-narration-edit rerun                  {edited_s:6.1f} s   ÷ cold  = {edited_s / cold_s:.2f}"
          f"   provider calls: {provider_calls(edited)}")
    print(f"composition of the cold render            {compose_s:6.1f} s")
    for kind in ("tts", "image", "clip", "segment", "compose"):
        seconds = [node["seconds"] for node in cold_nodes if node["kind"] == kind]
        print(f"  {kind:<8} nodes: {len(seconds)}, {sum(seconds):5.1f} s in all (they overlap)")
    print(f"soundtrack: {loudness['integrated_lufs']} LUFS, {loudness['true_peak_dbtp']} dBTP "
          f"(target {loudness['target_lufs']}, {loudness['passes']} encodes)")
    if not args.skip_moviepy:
        moviepy_s = moviepy_compose(cold, board, settings.fps, workdir)
        print(f"same composition with MoviePy             {moviepy_s:6.1f} s   ÷ ours  = {moviepy_s / compose_s:.1f}")


if __name__ == "__main__":
    main()
