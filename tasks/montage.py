"""The final render: every scene's clip, narration and captions, each frame encoded once.

Scene lengths are whole frames, so picture, narration and captions share one timeline. A scene
lasts as long as its narration plus a short pad (the speech sets the pace, not the planner's
guess of a scene's length, which only sets how long a clip is asked for), or as long as its
trim where one is given (never less than its speech). Each scene's length depends on that
scene alone, so an edit moves no other scene's frames.

The picture is encoded in segments of a few scenes, each in its own ffmpeg run with its
captions burned in. A segment depends only on its own scenes and on the tail of the scene
before it (the crossfade into its first scene): where segments begin is chosen from the
scenes' ids, not their positions, so adding, deleting or editing a scene re-encodes only
the segments it touches (tasks/compose.py makes each a node of its own). The segments are
joined without re-encoding and the soundtrack is mixed over the whole narration, then
encoded at the target loudness (tasks/loudness.py), and the published file is measured.
"""

from __future__ import annotations

import hashlib
import io
import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.audio import at_rate, seconds_of
from tasks.ffmpeg import FASTSTART, FINAL_AUDIO_ARGS, FINAL_VIDEO_ARGS, MediaError, run_ffmpeg
from tasks.loudness import Loudness, encode_at, gain_to, measure
from tasks.providers.base import WordTiming
from tasks.stage import CastSprite, Stage, draw_stage
from tasks.storyboard import Transition
from tasks.subtitles import SceneWords, Speaker, Turn, burn_filter, karaoke_ass

# A segment starts at a scene whose id hashes to a multiple of SEGMENT_EVERY (about one
# scene in four), and after at most SEGMENT_SCENES scenes: that bounds each ffmpeg run's
# decoders, memory and argv, and keeps a segment's start where its scenes are, whatever
# was added or removed before it.
SEGMENT_SCENES = 8
SEGMENT_EVERY = 4
SAMPLE_RATE = 48_000
VOICE_LUFS = -20.0  # the narration's level in the mix, which the music pad is set against
# A soft C major pad (C3 G3 C4 E4), each tone swelling at its own slow rate so it drifts.
PAD_TONES = [(130.81, 0.1), (196.00, 0.13), (261.63, 0.17), (329.63, 0.23)]


@dataclass(frozen=True)
class SceneMedia:
    # Silent H.264 at the output size, shorter or longer than the scene; None where only the
    # scene's sound and length are needed (the soundtrack, the captions file).
    clip: Path | None
    audio: Path  # 16-bit PCM mono WAV of the scene's narration
    words: list[WordTiming]  # relative to the start of `audio`
    turns: tuple[Turn, ...] = ()  # who speaks when; none: the narrator throughout
    cast: tuple[CastSprite, ...] = ()  # characters on screen, in order; their sprites
    trim: tuple[float, float] | None = None  # the part of the clip shown, seconds into it
    # Where a timed scene starts and ends in the video, in seconds: it lasts exactly that
    # (its boundaries on the frames nearest them); None: its speech plus the pad, or its trim.
    span: tuple[float, float] | None = None
    # When the speaking sprites' mouths are open, in seconds into the clip (offline lip-sync);
    # None: a speaker's talking sprite shows all through their turn.
    mouth: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Composed:
    duration: float  # seconds
    loudness: Loudness  # of the published file's soundtrack
    passes: int  # encodes of the soundtrack it took to meet the loudness target


def scene_frames(scene: SceneMedia, fps: int, pad: float) -> int:
    """How many frames `scene` is on screen: its span, or its speech plus `pad`, or its trim
    (never less than its speech)."""
    if scene.span is not None:
        start, end = scene.span
        return round(end * fps) - round(start * fps)
    speech = seconds_of(scene.audio)
    seconds = speech + pad if scene.trim is None else scene.trim[1] - scene.trim[0]
    # Rounded, so lengths err both ways and add up to the video's; never cutting the speech.
    return max(round(seconds * fps), math.ceil(speech * fps - 1e-6))


def fade_frames(before: int, after: int, fps: int,
                transition: Transition = Transition.crossfade) -> int:
    """The transition between two scenes of `before` and `after` frames: at most half of
    either, one frame at least; none for a cut."""
    if transition is Transition.cut:
        return 0
    return max(1, min(round(transition.seconds * fps), before // 2, after // 2))


def _on_screen(scene: SceneMedia) -> tuple[tuple[float, float], ...] | None:
    """When the scene's sprites' mouths are open, timed from the scene's start (its trim's)."""
    if scene.mouth is None:
        return None
    lead = scene.trim[0] if scene.trim else 0.0
    return tuple((start - lead, end - lead) for start, end in scene.mouth if end > lead)


def segment_spans(scene_ids: Sequence[str]) -> list[range]:
    """The scenes (by position) of each segment, in order."""
    starts = []
    for index, scene_id in enumerate(scene_ids):
        chosen = int.from_bytes(hashlib.sha256(scene_id.encode()).digest()[:4], "big") % SEGMENT_EVERY == 0
        if not starts or chosen or index - starts[-1] >= SEGMENT_SCENES:
            starts.append(index)
    return [range(start, stop) for start, stop in zip(starts, [*starts[1:], len(scene_ids)])]


def encode_segment(scenes: Sequence[SceneMedia], before: SceneMedia | None, *, width: int,
                   height: int, fps: int, pad: float, speakers: dict[str, Speaker],
                   language: str, out: Path, workdir: Path,
                   transition: Transition = Transition.crossfade) -> None:
    """Encode `scenes` (captions burned in) into `out`, each giving way to the next with
    `transition`, the first coming in from the tail of `before`, the scene just before them
    in the video (None: they open it)."""
    if not scenes:
        raise MediaError("cannot encode a segment without scenes")
    workdir.mkdir(parents=True, exist_ok=True)
    read = [before, *scenes] if before else list(scenes)
    frames = [scene_frames(scene, fps, pad) for scene in read]
    first = 1 if before else 0
    # fades[i]: the crossfade into read[i] (0: nothing before it)
    fades = [0] + [fade_frames(frames[i - 1], frames[i], fps, transition)
                   for i in range(1, len(read))]
    starts, offset = [], 0
    for count in frames[first:]:
        starts.append(offset)
        offset += count
    captions = workdir / "captions.ass"
    captions.write_text(karaoke_ass(
        [SceneWords(start / fps, count / fps, scene.words, scene.turns)
         for start, count, scene in zip(starts, frames[first:], scenes)],
        width=width, height=height, speakers=speakers, language=language), encoding="utf-8")
    stages = {index: draw_stage(scene.cast, scene.turns, width, height,
                                workdir / f"stage-{index:04d}.png", mouth=_on_screen(scene))
              for index, scene in enumerate(read) if scene.cast}
    inputs = []
    for index, scene in enumerate(read):
        # Read no further than the scene needs (its length plus the fade into the next).
        needed = (frames[index] + (fades[index + 1] if index + 1 < len(read) else 0) + 1) / fps
        if scene.trim:
            start, end = scene.trim
            inputs += ["-ss", f"{start:.6f}"] if start else []
            needed = min(needed, end - start)
        inputs += ["-t", f"{needed:.6f}", "-i", str(scene.clip)]
    for stage in stages.values():  # one still picture each, after the clips
        inputs += ["-i", str(stage.path)]
    graph = workdir / "segment.txt"
    graph.write_text(_segment_graph(frames, fades, first, width, height, fps, captions, stages,
                                    transition), encoding="utf-8")
    run_ffmpeg([*inputs, "-/filter_complex", str(graph), "-map", "[v]", *FINAL_VIDEO_ARGS,
                str(out)], what=f"compose a segment of {len(scenes)} scenes")


def join_video(segments: Sequence[Path], scenes: Sequence[SceneMedia], *, fps: int, pad: float,
               music: bool, loudness: float, video_out: Path, workdir: Path,
               track: Path | None = None) -> Composed:
    """Join the encoded `segments` without re-encoding and lay the soundtrack under them: the
    narration of `scenes` (all of the video's, in order) at `loudness` LUFS integrated, over
    the music pad when asked; or a music video's `track`, as it was mastered (no gain, only
    encoded), to the video's last frame."""
    workdir.mkdir(parents=True, exist_ok=True)
    narration = workdir / "narration.wav"
    frames = write_narration(scenes, fps, pad, narration, workdir)
    duration = sum(frames) / fps
    # Our own file names only (no path of anyone's), each quoted for the concat demuxer.
    names = []
    for n, segment in enumerate(segments):
        names.append(f"part-{n:04d}.mp4")
        (workdir / names[-1]).unlink(missing_ok=True)
        (workdir / names[-1]).symlink_to(segment.resolve())
    playlist = workdir / "segments.txt"
    playlist.write_text("".join(f"file '{name}'\n" for name in names), encoding="utf-8")
    graph, mix, soundtrack = (workdir / name for name in ("mix.txt", "mix.wav", "soundtrack.m4a"))
    if track is not None:
        run_ffmpeg(["-i", str(track), "-af", f"apad,atrim=end={duration:.6f}",
                    *FINAL_AUDIO_ARGS, str(soundtrack)], what="lay the track under the video")
        passes = 0
    else:
        voice_gain = gain_to(measure(narration), VOICE_LUFS)
        graph.write_text(_audio_graph(duration, music, voice_gain), encoding="utf-8")
        # Float samples: a mix louder than full scale is turned down later, never clipped.
        run_ffmpeg(["-i", str(narration), "-/filter_complex", str(graph), "-map", "[a]",
                    "-c:a", "pcm_f32le", str(mix)], what="mix the soundtrack")
        _, passes = encode_at(mix, soundtrack, loudness)
    run_ffmpeg(["-f", "concat", "-i", str(playlist), "-i", str(soundtrack),
                "-map", "0:v", "-map", "1:a", "-c", "copy", *FASTSTART, str(video_out)],
               what="join the segments")
    return Composed(duration, measure(video_out), passes)


def video_captions(scenes: Sequence[SceneMedia], *, width: int, height: int, fps: int,
                   pad: float, speakers: dict[str, Speaker], language: str) -> str:
    """The captions of the whole video, timed on it: the file published beside it."""
    timed, start = [], 0
    for scene in scenes:
        count = scene_frames(scene, fps, pad)
        timed.append(SceneWords(start / fps, count / fps, scene.words, scene.turns))
        start += count
    return karaoke_ass(timed, width=width, height=height, speakers=speakers, language=language)


def write_narration(scenes: Sequence[SceneMedia], fps: int, pad: float, out: Path,
                    workdir: Path) -> list[int]:
    """Concatenate the scene WAVs (at the highest rate among them), each followed by quiet to
    the end of its scene; return each scene's length in frames.

    Every scene boundary falls on the exact sample of its frame, so picture and sound never
    drift apart however many scenes there are.
    """
    rate = max(_rate(scene.audio) for scene in scenes)
    frames: list[int] = []
    with wave.open(str(out), "wb") as sink:
        sink.setparams((1, 2, rate, 0, "NONE", "not compressed"))
        for scene in scenes:
            frames.append(scene_frames(scene, fps, pad))
            end = round(sum(frames) / fps * rate)
            room = end - sink.tell()
            pcm = _pcm(at_rate(scene.audio.read_bytes(), rate, workdir))[:room * 2]
            sink.writeframes(pcm + b"\0\0" * (room - len(pcm) // 2))
    return frames


def _rate(audio: Path) -> int:
    with wave.open(str(audio), "rb") as source:
        return source.getframerate()


def _pcm(wav: bytes) -> bytes:
    with wave.open(io.BytesIO(wav), "rb") as source:
        if (source.getnchannels(), source.getsampwidth()) != (1, 2):
            raise MediaError("narration: expected 16-bit mono WAV")
        return source.readframes(source.getnframes())


def _segment_graph(frames: list[int], fades: list[int], first: int, width: int, height: int,
                   fps: int, captions: Path, stages: dict[int, Stage],
                   transition: Transition) -> str:
    """The filter graph of one segment: inputs are its scenes' clips in order (after the
    scene before it when `first` is 1), then the stage pictures.

    Scene i shows its clip's frames [fades[i], n) after crossfading in from scene i-1 over
    fades[i] frames; it lends frames [n, n + fades[i+1]) to the crossfade into scene i+1. Only
    those short windows go through xfade, which works in yuv444p: the bulk of every scene
    stays yuv420p from decoder to encoder, with no conversion.
    """
    count_read = len(frames)
    stage_inputs = {index: count_read + n for n, index in enumerate(stages)}
    lines, timeline = [], []
    for i in range(count_read):
        count = frames[i]
        pieces = {}  # body, head and tail, as far as this segment shows them
        if i >= first:
            pieces["b"] = (fades[i], count)
            if fades[i]:
                pieces["h"] = (0, fades[i])
        if i + 1 < count_read and fades[i + 1]:
            pieces["t"] = (count, count + fades[i + 1])
        if not pieces:  # the scene before the segment, when a cut leads out of it
            continue
        end = max(stop for _, stop in pieces.values())
        # fps/scale/crop/setsar/format are no-ops on conforming clips; concat needs them all
        # equal, and a model's clip of another shape or size is filled in, never stretched.
        # A short clip holds its last frame; trim cuts both long clips and the padding.
        scene = f"[{i}:v]"
        conform = (f"setpts=PTS-STARTPTS,fps={fps},"
                   f"scale={width}:{height}:force_original_aspect_ratio=increase,"
                   f"crop={width}:{height},setsar=1,format=yuv420p,tpad=stop_mode=clone:stop={end}")
        if i in stages:  # the cast drawn over the scene's own timeline, from its first frame
            lines.append(f"{scene}{conform}[c{i}];")
            lines += stages[i].overlay(f"[{stage_inputs[i]}:v]", f"[c{i}]", f"[s{i}]", tag=str(i))
            lines.append(f"[s{i}]split={len(pieces)}" + "".join(f"[{name}{i}]" for name in pieces) + ";")
        else:
            lines.append(f"{scene}{conform},split={len(pieces)}"
                         + "".join(f"[{name}{i}]" for name in pieces) + ";")
        lines += [f"[{name}{i}]trim=start_frame={start}:end_frame={stop},"
                  f"setpts=PTS-STARTPTS[{name}{i}p];" for name, (start, stop) in pieces.items()]
        if i >= first:
            if fades[i]:
                lines.append(f"[t{i - 1}p][h{i}p]xfade=transition={transition.xfade}:"
                             f"duration={fades[i] / fps:.6f}:offset=0,format=yuv420p[x{i}];")
                timeline.append(f"[x{i}]")
            timeline.append(f"[b{i}p]")
    lines.append("".join(timeline) + f"concat=n={len(timeline)}:v=1:a=0,{burn_filter(captions)}[v]")
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
