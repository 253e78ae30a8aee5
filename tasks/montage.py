"""The final render: every scene's clip, narration and captions, each frame encoded once.

Scene lengths are whole frames, so picture, narration and captions share one timeline:
scene i starts at the sum of the lengths before it, and crossfades never shorten the video
because each clip is extended (last frame held) to cover the fade into the next scene. A scene
lasts as long as its narration plus a short pad: the speech sets the pace, not the planner's
guess of a scene's length (which only sets how long a clip is asked for).

The soundtrack is mixed to a WAV, then encoded at the target loudness (tasks/loudness.py), and
the published file is measured.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from tasks.ffmpeg import FASTSTART, FINAL_VIDEO_ARGS, MediaError, run_ffmpeg
from tasks.loudness import Loudness, encode_at, gain_to, measure
from tasks.providers.base import WordTiming
from tasks.stage import CastSprite, Stage, draw_stage
from tasks.subtitles import SceneWords, Speaker, Turn, burn_filter, karaoke_ass

CROSSFADE = 0.4
SEGMENT_SCENES = 8  # scenes per ffmpeg run: bounds its decoders, memory and argv
SAMPLE_RATE = 48_000
VOICE_LUFS = -20.0  # the narration's level in the mix, which the music pad is set against
# A soft C major pad (C3 G3 C4 E4), each tone swelling at its own slow rate so it drifts.
PAD_TONES = [(130.81, 0.1), (196.00, 0.13), (261.63, 0.17), (329.63, 0.23)]


@dataclass(frozen=True)
class SceneMedia:
    clip: Path  # silent H.264 mp4 at the output size; may be shorter or longer than the scene
    audio: Path  # 16-bit PCM mono WAV of the scene's narration
    words: list[WordTiming]  # relative to the start of `audio`
    turns: tuple[Turn, ...] = ()  # who speaks when; none: the narrator throughout
    cast: tuple[CastSprite, ...] = ()  # characters on screen, in order; their sprites


@dataclass(frozen=True)
class Composed:
    duration: float  # seconds
    loudness: Loudness  # of the published file's soundtrack
    passes: int  # encodes of the soundtrack it took to meet the loudness target


def compose_video(scenes: list[SceneMedia], *, width: int, height: int, fps: int, music: bool,
                  pad: float, loudness: float, video_out: Path, subtitles_out: Path,
                  workdir: Path, speakers: dict[str, Speaker] | None = None,
                  language: str = "en") -> Composed:
    """Render the finished video and its captions, scenes `pad` seconds longer than their
    narration and the soundtrack at `loudness` LUFS integrated.

    The picture is encoded in segments of SEGMENT_SCENES scenes, each in its own ffmpeg run
    with captions burned in, then the segments are joined without re-encoding and the
    soundtrack is mixed over the whole narration. ffmpeg opens a decoder per input, so memory
    and command lines stay the size of one segment however many scenes the video has.
    """
    if not scenes:
        raise MediaError("cannot compose a video without scenes")
    workdir.mkdir(parents=True, exist_ok=True)
    narration = workdir / "narration.wav"
    frames = _write_narration(scenes, fps, pad, narration)
    starts = [0, *accumulate(frames)]
    duration = starts[-1] / fps

    captions = karaoke_ass(
        [SceneWords(start / fps, count / fps, scene.words, scene.turns)
         for start, count, scene in zip(starts, frames, scenes)],
        width=width, height=height, speakers=speakers, language=language)
    ass_path = workdir / "captions.ass"
    ass_path.write_text(captions, encoding="utf-8")
    subtitles_out.write_text(captions, encoding="utf-8")

    fade = max(1, min(round(CROSSFADE * fps), min(frames) // 2))
    # The characters on stage, drawn once per scene into one picture of all its poses.
    stages = {index: draw_stage(scene.cast, scene.turns, width, height,
                                workdir / f"stage-{index:04d}.png")
              for index, scene in enumerate(scenes) if scene.cast}
    segments = []
    for first in range(0, len(scenes), SEGMENT_SCENES):
        span = range(first, min(first + SEGMENT_SCENES, len(scenes)))
        segment = workdir / f"segment-{len(segments):04d}.mp4"
        graph = workdir / f"segment-{len(segments):04d}.txt"
        read = range(max(first - 1, 0), span.stop)
        staged = {index: stages[index] for index in read if index in stages}
        graph.write_text(_segment_graph(frames, fade, span, width, height, fps, starts[first],
                                        ass_path, staged), encoding="utf-8")
        inputs = []
        for index in read:
            # Read no further than the scene needs (its length plus the fade into the next).
            inputs += ["-t", f"{(frames[index] + fade + 1) / fps:.6f}",
                       "-i", str(scenes[index].clip)]
        for stage in staged.values():  # one still picture each, after the clips
            inputs += ["-i", str(stage.path)]
        run_ffmpeg([*inputs, "-/filter_complex", str(graph), "-map", "[v]", *FINAL_VIDEO_ARGS,
                    str(segment)], what=f"compose scenes {span.start + 1}-{span.stop}")
        segments.append(segment)

    # Our own file names only (no user text), each quoted for the concat demuxer.
    playlist = workdir / "segments.txt"
    playlist.write_text("".join(f"file '{path.name}'\n" for path in segments), encoding="utf-8")
    graph, mix, soundtrack = (workdir / name for name in ("mix.txt", "mix.wav", "soundtrack.m4a"))
    voice_gain = gain_to(measure(narration), VOICE_LUFS)
    graph.write_text(_audio_graph(duration, music, voice_gain), encoding="utf-8")
    # Float samples: a mix louder than full scale is turned down later, never clipped here.
    run_ffmpeg(["-i", str(narration), "-/filter_complex", str(graph), "-map", "[a]",
                "-c:a", "pcm_f32le", str(mix)], what="mix the soundtrack")
    _, passes = encode_at(mix, soundtrack, loudness)
    run_ffmpeg(["-f", "concat", "-i", str(playlist), "-i", str(soundtrack), "-map", "0:v",
                "-map", "1:a", "-c", "copy", *FASTSTART, str(video_out)], what="join the segments")
    return Composed(duration, measure(video_out), passes)


def _write_narration(scenes: list[SceneMedia], fps: int, pad: float, out: Path) -> list[int]:
    """Concatenate the scene WAVs, each followed by `pad` seconds of silence and then padded to
    its scene's length in whole frames.

    Scene boundaries are rounded up to whole frames from the exact running total, so the
    rounding never adds up over many scenes.
    """
    frames: list[int] = []
    exact_end, frame_end = 0.0, 0
    with wave.open(str(out), "wb") as sink:
        for index, scene in enumerate(scenes):
            with wave.open(str(scene.audio), "rb") as source:
                channels, width, rate = source.getparams()[:3]
                if index == 0:
                    sink.setparams((channels, width, rate, 0, "NONE", "not compressed"))
                elif (channels, width, rate) != sink.getparams()[:3]:
                    raise MediaError(f"scene {index + 1}: narration WAV format differs from "
                                     "scene 1's")
                samples = source.getnframes()
                sink.writeframes(source.readframes(samples))
            exact_end += samples / rate + pad
            frame_start, frame_end = frame_end, math.ceil(exact_end * fps - 1e-6)
            frames.append(frame_end - frame_start)
            silence = round(frame_end / fps * rate) - sink.tell()
            sink.writeframes(b"\0" * (max(silence, 0) * width * channels))
    return frames


def _segment_graph(frames: list[int], fade: int, span: range, width: int, height: int,
                   fps: int, start: int, ass_path: Path, stages: dict[int, Stage]) -> str:
    """The filter graph for the scenes in `span`, whose first frame is frame `start` of the video.

    Scene i shows its clip's frames [fade, n) after crossfading in from scene i-1 over `fade`
    frames, then lends frames [n, n + fade) to the crossfade into scene i+1. A segment after
    the first therefore also reads the scene before it, for that scene's tail alone.

    Only those short windows go through xfade, which works in yuv444p: the bulk of every
    scene stays yuv420p from decoder to encoder, with no conversion.
    """
    first_input = max(span.start - 1, 0)
    stage_inputs = {index: span.stop - first_input + n for n, index in enumerate(stages)}
    lines, timeline = [], []
    for i in range(first_input, span.stop):
        count = frames[i]
        pieces = {}  # body, head and tail, as far as this segment shows them
        if i in span:
            pieces["b"] = (fade if i else 0, count)
            if i:
                pieces["h"] = (0, fade)
        if i + 1 in span:
            pieces["t"] = (count, count + fade)
        end = max(stop for _, stop in pieces.values())
        # fps/scale/crop/setsar/format are no-ops on conforming clips; concat needs them all
        # equal, and a model's clip of another shape or size is filled in, never stretched.
        # A short clip holds its last frame; trim cuts both long clips and the padding.
        scene = f"[{i - first_input}:v]"
        conform = (f"fps={fps},scale={width}:{height}:force_original_aspect_ratio=increase,"
                   f"crop={width}:{height},setsar=1,format=yuv420p,tpad=stop_mode=clone:stop={end}")
        if i in stages:  # the cast drawn over the scene's own timeline, from its first frame
            lines.append(f"{scene}setpts=PTS-STARTPTS,{conform}[c{i}];")
            lines += stages[i].overlay(f"[{stage_inputs[i]}:v]", f"[c{i}]", f"[s{i}]", tag=str(i))
            lines.append(f"[s{i}]split={len(pieces)}" + "".join(f"[{name}{i}]" for name in pieces) + ";")
        else:
            lines.append(f"{scene}{conform},split={len(pieces)}"
                         + "".join(f"[{name}{i}]" for name in pieces) + ";")
        lines += [f"[{name}{i}]trim=start_frame={first}:end_frame={stop},"
                  f"setpts=PTS-STARTPTS[{name}{i}p];" for name, (first, stop) in pieces.items()]
        if i in span:
            if i:
                lines.append(f"[t{i - 1}p][h{i}p]xfade=transition=fade:"
                             f"duration={fade / fps:.6f}:offset=0,format=yuv420p[x{i}];")
                timeline.append(f"[x{i}]")
            timeline.append(f"[b{i}p]")
    # The captions are timed on the whole video: shift the segment there to burn them.
    lines.append("".join(timeline) + f"concat=n={len(timeline)}:v=1:a=0,"
                 f"setpts=PTS+{start}/({fps}*TB),{burn_filter(ass_path)},"
                 "setpts=PTS-STARTPTS[v]")
    return "\n".join(lines) + "\n"


def _audio_graph(duration: float, music: bool, voice_gain: float) -> str:
    """The narration at VOICE_LUFS, over the music pad when asked: the same balance whatever
    level the voice came at."""
    voice = f"[0:a]volume={voice_gain:.3f}dB,aresample={SAMPLE_RATE}"
    if not music:
        return f"{voice}[a]\n"
    lines = [f"sine=frequency={tone}:sample_rate={SAMPLE_RATE}:duration={duration:.6f},"
             f"tremolo=f={swell}:d=0.6[p{i}];" for i, (tone, swell) in enumerate(PAD_TONES)]
    fade = min(2.0, duration / 4)
    lines += [
        "".join(f"[p{i}]" for i in range(len(PAD_TONES)))
        + f"amix=inputs={len(PAD_TONES)}:normalize=0,volume=0.25,"
        f"afade=t=in:d={fade:.6f},afade=t=out:st={duration - fade:.6f}:d={fade:.6f}[pad];",
        f"{voice},asplit[voice][key];",
        # Duck the pad under the voice: the narration is the compressor's key.
        "[pad][key]sidechaincompress=threshold=0.02:ratio=8:attack=20:release=500[bed];",
        "[voice][bed]amix=inputs=2:normalize=0:duration=first[a]",
    ]
    return "\n".join(lines) + "\n"
