"""The final render, with real ffmpeg and libass on small inputs."""

from __future__ import annotations

import math
import re
import struct
import wave
from array import array
from pathlib import Path

import pytest

from tasks import montage
from tasks.montage import SceneMedia
from tasks.storyboard import Transition
from tests.composing import compose_video
from tasks.ffmpeg import INTERMEDIATE_VIDEO_ARGS, count_frames, probe, run_ffmpeg
from tasks.providers.base import WordTiming

WIDTH, HEIGHT, FPS = 180, 320, 12
FRAME = 1 / FPS
PAD = 0.5  # seconds of quiet after each scene's narration
COLORS = ["0x800000", "0x000080", "0x006000", "0x604000"]


def make_clip(path: Path, seconds: float, color: str) -> Path:
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c={color}:s={WIDTH}x{HEIGHT}:r={FPS}:d={seconds}",
                *INTERMEDIATE_VIDEO_ARGS, str(path)], what="make a test clip")
    return path


def make_wav(path: Path, seconds: float, rate: int = 16_000) -> Path:
    samples = round(seconds * rate)
    tone = (round(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(samples))
    with wave.open(str(path), "wb") as out:
        out.setparams((1, 2, rate, 0, "NONE", "not compressed"))
        out.writeframes(struct.pack(f"<{samples}h", *tone))
    return path


def spoken(seconds: float, *texts: str) -> list[WordTiming]:
    step = seconds / len(texts)
    return [WordTiming(text=t, start=i * step, end=(i + 0.8) * step) for i, t in enumerate(texts)]


def scene(tmp_path: Path, index: int, *, clip: float, audio: float,
          texts: tuple[str, ...] = ("hello", "there")) -> SceneMedia:
    return SceneMedia(
        clip=make_clip(tmp_path / f"clip{index}.mp4", clip, COLORS[index % len(COLORS)]),
        audio=make_wav(tmp_path / f"voice{index}.wav", audio),
        words=spoken(audio, *texts))


def compose(tmp_path: Path, scenes: list[SceneMedia], *, music: bool = False, name: str = "out",
            workdir: Path | None = None, pad: float = PAD,
            spans: list[range] | None = None,
            transition: Transition = Transition.crossfade) -> tuple[float, Path, Path]:
    video, ass = tmp_path / f"{name}.mp4", tmp_path / f"{name}.ass"
    composed = compose_video(scenes, width=WIDTH, height=HEIGHT, fps=FPS, music=music, pad=pad,
                             loudness=-14, video_out=video, subtitles_out=ass,
                             workdir=workdir or tmp_path / f"{name}-work", spans=spans,
                             transition=transition)
    return composed.duration, video, ass


def frame_at(video: Path, seconds: float) -> bytes:
    out = video.with_suffix(f".{seconds:.2f}.rgb")
    run_ffmpeg(["-ss", f"{seconds}", "-i", str(video), "-frames:v", "1", "-f", "rawvideo",
                "-pix_fmt", "rgb24", str(out)], what="grab a frame")
    return out.read_bytes()


def mean_rgb(frame: bytes, top: int, bottom: int) -> tuple[float, float, float]:
    rows = frame[top * WIDTH * 3:bottom * WIDTH * 3]
    count = len(rows) / 3
    return tuple(sum(rows[c::3]) / count for c in range(3))


def loudness(video: Path, start: float, end: float) -> float:
    """RMS of the decoded soundtrack between two times, on a 0..1 scale."""
    raw = video.with_suffix(".pcm")
    run_ffmpeg(["-i", str(video), "-vn", "-ac", "1", "-ar", "8000", "-f", "s16le", str(raw)],
               what="decode the soundtrack")
    samples = array("h", raw.read_bytes())[round(start * 8000):round(end * 8000)]
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768


def test_output_is_h264_and_aac_at_the_requested_size_and_lasts_the_sum_of_scene_lengths(
        tmp_path):
    scenes = [scene(tmp_path, 0, clip=0.8, audio=1.0),  # clip shorter than its scene
              scene(tmp_path, 1, clip=4.0, audio=0.5),  # clip longer than its scene
              scene(tmp_path, 2, clip=1.0, audio=2.2)]
    total = sum(audio + PAD for audio in (1.0, 0.5, 2.2))

    duration, video, _ = compose(tmp_path, scenes)

    info = probe(video)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert duration == pytest.approx(total, abs=2 * FRAME)
    assert info.duration == pytest.approx(total, abs=2 * FRAME)
    assert count_frames(video) == pytest.approx(total * FPS, abs=2)


def test_short_clip_holds_its_last_frame_and_long_clip_is_cut_at_its_scene(tmp_path):
    scenes = [scene(tmp_path, 0, clip=0.5, audio=2.5),  # red for 0.5 s of a 3 s scene
              scene(tmp_path, 1, clip=6.0, audio=1.5)]  # blue, far too long for its 2 s
    duration, video, _ = compose(tmp_path, scenes)

    red, _, blue = mean_rgb(frame_at(video, 2.5), 0, HEIGHT // 2)  # late in scene 1
    assert red > 100 and blue < 30
    red, _, blue = mean_rgb(frame_at(video, 4.5), 0, HEIGHT // 2)  # late in scene 2
    assert blue > 100 and red < 30
    assert duration == pytest.approx(5.0, abs=2 * FRAME)


def test_narration_starts_with_its_scene_and_is_padded_with_silence(tmp_path):
    scenes = [scene(tmp_path, 0, clip=1.0, audio=1.0), scene(tmp_path, 1, clip=1.0, audio=1.0)]
    _, video, _ = compose(tmp_path, scenes, pad=1.5)

    assert loudness(video, 0.2, 0.8) > 0.05  # scene 1 speaks
    assert loudness(video, 1.2, 2.4) < 0.005  # then pauses for the pad, until its scene ends
    assert loudness(video, 2.7, 3.3) > 0.05  # scene 2 speaks from its own start


def caption_times(ass: str) -> list[tuple[float, float]]:
    """When each caption of an ASS document is shown, in seconds."""
    return [tuple(sum(float(p) * 60 ** i for i, p in enumerate(reversed(t.split(":"))))
                  for t in line.split(",")[1:3])
            for line in ass.splitlines() if line.startswith("Dialogue:")]


def onsets(video: Path, threshold: float = 0.02) -> list[float]:
    """Where sound starts after at least 0.2 s of quiet, in seconds (50 ms windows)."""
    raw = video.with_suffix(".onsets.pcm")
    run_ffmpeg(["-i", str(video), "-vn", "-ac", "1", "-ar", "8000", "-f", "s16le", str(raw)],
               what="decode the soundtrack")
    samples = array("h", raw.read_bytes())
    found, quiet = [], 4
    for start in range(0, len(samples) - 400, 400):
        window = samples[start:start + 400]
        loud = math.sqrt(sum(s * s for s in window) / len(window)) / 32768 > threshold
        if loud and quiet >= 4:
            found.append(start / 8000)
        quiet = 0 if loud else quiet + 1
    return found


def test_a_scene_lasts_its_speech_plus_the_pad_and_captions_leave_no_longer_gap(tmp_path):
    """Speech of 1.3, 0.6 and 2.0 s with a 0.4 s pad: each scene starts speaking where the
    one before ended plus the pad, and a caption is up all the while (also during the pads)."""
    speech, pad = [1.3, 0.6, 2.0], 0.4
    scenes = [scene(tmp_path, i, clip=1.0, audio=seconds, texts=(f"w{i}a", f"w{i}b"))
              for i, seconds in enumerate(speech)]
    duration, video, ass = compose(tmp_path, scenes, pad=pad)

    starts = [sum(speech[:i]) + i * pad for i in range(len(speech))]
    assert duration == pytest.approx(sum(speech) + len(speech) * pad, abs=FRAME)
    assert onsets(video) == pytest.approx(starts, abs=FRAME)
    reached, longest = 0.0, 0.0
    for start, end in sorted(caption_times(ass.read_text(encoding="utf-8"))):
        longest, reached = max(longest, start - reached), max(reached, end)
    assert max(longest, duration - reached) <= pad
    # In the pad after scene 1's words, before scene 2 speaks: its caption is drawn.
    caption = frame_at(video, starts[1] - pad / 2)[HEIGHT // 2 * WIDTH * 3:]
    assert sum(r > 180 and g > 180 for r, g in zip(caption[::3], caption[1::3])) > 20


def test_music_plays_under_the_narration_only_when_asked(tmp_path):
    scenes = [scene(tmp_path, 0, clip=1.0, audio=1.0)]
    _, quiet, _ = compose(tmp_path, scenes, music=False, name="quiet", pad=3.0)
    _, scored, _ = compose(tmp_path, scenes, music=True, name="scored", pad=3.0)

    for video in (quiet, scored):
        assert probe(video).audio_codec == "aac"
        assert loudness(video, 0.2, 0.8) > 0.05
    assert loudness(quiet, 2.0, 3.0) < 0.005
    assert 0.005 < loudness(scored, 2.0, 3.0) < loudness(scored, 0.2, 0.8)


def test_karaoke_captions_are_written_and_burned_in(tmp_path):
    scenes = [scene(tmp_path, 0, clip=1.0, audio=2.0, texts=("one", "two")),
              scene(tmp_path, 1, clip=1.0, audio=2.0, texts=("three", "four"))]
    duration, video, ass = compose(tmp_path, scenes)

    text = ass.read_text(encoding="utf-8")
    assert text == (tmp_path / "out-work" / "segment-0000" / "captions.ass").read_text(encoding="utf-8")
    assert len(re.findall(r"\{\\k\d+\}", text)) == 4
    assert all(0 <= start < end <= duration for start, end in caption_times(text))
    # Mid "one": a highlighted (yellow) word over the dark red clip in the caption area.
    frame = frame_at(video, 0.4)
    caption = frame[HEIGHT // 2 * WIDTH * 3:]
    assert any(r > 180 and g > 180 and b < r - 80
               for r, g, b in zip(caption[::3], caption[1::3], caption[2::3]))


def test_hostile_narration_composes_and_the_caption_stays_at_the_bottom(tmp_path):
    hostile = ("{\\pos(0,0)}", "{\\an8}x", "\\N", "[0:v]nullsink;", "'it's'", "a:b,c%", "😀",
               "مرحبا")
    plain_scenes = [scene(tmp_path, 0, clip=1.0, audio=2.0, texts=("calm",))]
    hostile_scenes = [scene(tmp_path, 0, clip=1.0, audio=2.0, texts=hostile)]
    _, plain, _ = compose(tmp_path, plain_scenes, name="plain")
    _, attacked, ass = compose(tmp_path, hostile_scenes, name="attacked")

    text = ass.read_text(encoding="utf-8")
    assert "\\{\\\u200dpos(0,0)\\}" in text and "\\{\\\u200dan8\\}x" in text
    for seconds in (0.3, 0.9, 1.5):
        top_plain = frame_at(plain, seconds)[:HEIGHT // 2 * WIDTH * 3]
        top_attacked = frame_at(attacked, seconds)[:HEIGHT // 2 * WIDTH * 3]
        assert max(abs(a - b) for a, b in zip(top_plain, top_attacked)) < 24


def test_filter_graph_survives_a_workdir_with_filter_syntax_in_its_name(tmp_path):
    workdir = tmp_path / "we'ird, [dir]; a:b\\c =x"
    scenes = [scene(tmp_path, 0, clip=1.0, audio=0.5)]
    duration, video, _ = compose(tmp_path, scenes, workdir=workdir)
    assert probe(video).duration == pytest.approx(duration, abs=2 * FRAME)


def test_segments_join_without_a_visible_seam(tmp_path):
    """Five scenes in three segments look and sound like the same five in one segment: the
    crossfades across segment joins, the captions of later segments and the frame count."""
    scenes = [scene(tmp_path, i, clip=1.0, audio=0.8, texts=(f"w{i}a", f"w{i}b"))
              for i in range(5)]
    _, whole, _ = compose(tmp_path, scenes, music=True, name="whole", spans=[range(5)])
    duration, joined, _ = compose(tmp_path, scenes, music=True, name="joined",
                                  spans=[range(0, 2), range(2, 4), range(4, 5)])

    assert len(list((tmp_path / "joined-work").glob("segment-*.mp4"))) == 3
    assert len(list((tmp_path / "whole-work").glob("segment-*.mp4"))) == 1
    assert count_frames(joined) == count_frames(whole) == round(duration * FPS)
    assert probe(joined).duration == pytest.approx(duration, abs=2 * FRAME)
    scene_length = 0.8 + PAD
    # Mid scene (a caption is up), mid crossfade, and the first frame after each join, each
    # seeked to the middle of its frame: the joined file's timestamps may differ from the whole
    # one's by a fraction of a millisecond, so a seek to a frame's edge can land on either side.
    per_scene = round(scene_length * FPS)
    frames = {*(per_scene * i + per_scene // 2 for i in range(5)),
              *(per_scene * i + round(Transition.crossfade.seconds * FPS / 2) for i in range(1, 5)),
              per_scene * 2, per_scene * 4}
    times = sorted((frame + 0.5) * FRAME for frame in frames)
    for seconds in times:
        one, other = frame_at(whole, seconds), frame_at(joined, seconds)
        assert sum(abs(x - y) for x, y in zip(one, other)) / len(one) < 3, seconds
    assert abs(loudness(whole, 0.1, duration - 0.1) - loudness(joined, 0.1, duration - 0.1)) < 1e-3


def test_each_ffmpeg_run_stays_the_size_of_one_segment(tmp_path, monkeypatch):
    """However many scenes, no ffmpeg run opens more than a segment's clips (plus the scene
    before it, for the crossfade) or gets a longer command line or filter graph."""
    runs = []

    def recorded(args, *, what):
        graphs = [Path(args[i + 1]) for i, arg in enumerate(args) if arg == "-/filter_complex"]
        runs.append((args.count("-i"), len(" ".join(args).encode()),
                     max((graph.stat().st_size for graph in graphs), default=0)))
        run_ffmpeg(args, what=what)

    monkeypatch.setattr(montage, "run_ffmpeg", recorded)
    largest = {}
    one = scene(tmp_path, 0, clip=0.3, audio=0.2)
    for count in (2 * montage.SEGMENT_SCENES + 1, 6 * montage.SEGMENT_SCENES + 1):
        scenes = [one] * count
        runs.clear()
        duration, video, _ = compose(tmp_path, scenes, name=f"n{count}")
        assert count_frames(video) == round(duration * FPS)
        assert max(inputs for inputs, _, _ in runs) <= montage.SEGMENT_SCENES + 1
        largest[count] = (max(size for _, size, _ in runs), max(graph for _, _, graph in runs))
    small, large = largest.values()
    assert large[0] <= small[0] * 1.05 and large[1] <= small[1] * 1.05, largest


def test_a_clip_of_another_shape_is_filled_in_not_stretched(tmp_path):
    """A 16:9 clip (red | green | blue bands) in a 9:16 video: only the centre band shows."""
    wide = tmp_path / "wide.mp4"
    bands = (f"color=c=red:s=107x180:d=2[r];color=c=0x00ff00:s=106x180:d=2[g];"
             f"color=c=blue:s=107x180:d=2[b];[r][g][b]hstack=3,fps={FPS}")
    run_ffmpeg(["-f", "lavfi", "-i", bands, *INTERMEDIATE_VIDEO_ARGS, str(wide)],
               what="make a wide clip")
    media = SceneMedia(clip=wide, audio=make_wav(tmp_path / "v.wav", 0.5),
                       words=spoken(0.5, "hi"))
    _, video, _ = compose(tmp_path, [media])

    info = probe(video)
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    red, green, blue = mean_rgb(frame_at(video, 0.5), 0, HEIGHT // 2)
    assert green > 180 and red < 40 and blue < 40


def top_colors(video: Path) -> list[tuple[float, float, float]]:
    """Every frame's mean colour above its captions, in order (decoded in one pass: a seek to
    a frame's edge can land on either side of it)."""
    raw = video.with_suffix(".rgb")
    run_ffmpeg(["-i", str(video), "-f", "rawvideo", "-pix_fmt", "rgb24", str(raw)],
               what="decode the frames")
    data, size = raw.read_bytes(), WIDTH * HEIGHT * 3
    return [mean_rgb(data[start:start + size], 0, 100) for start in range(0, len(data), size)]


@pytest.mark.parametrize("transition", [Transition.crossfade, Transition.fade_black,
                                        Transition.cut])
def test_a_look_s_transition_is_how_one_scene_gives_way_to_the_next(tmp_path, transition):
    """Through the transition into scene 2: a crossfade mixes red and blue, a fade through
    black goes dark, a cut shows the red scene to its last frame and the blue one from its
    first; the video lasts as long whatever the transition."""
    scenes = [scene(tmp_path, i, clip=1.0, audio=0.8) for i in range(2)]
    duration, video, _ = compose(tmp_path, scenes, transition=transition,
                                 name=transition.value)
    per_scene = round((0.8 + PAD) * FPS)
    fade = montage.fade_frames(per_scene, per_scene, FPS, transition)
    colors = top_colors(video)
    darkest = min(red + blue for red, _, blue in colors[per_scene:per_scene + fade + 1])
    if transition is Transition.crossfade:
        assert fade == round(0.4 * FPS) and darkest > 100
    elif transition is Transition.fade_black:
        assert fade == round(0.6 * FPS) and darkest < 20
    else:
        assert fade == 0
        assert [red > 100 for red, _, _ in colors] == [True] * per_scene + [False] * per_scene
    assert len(colors) == round(duration * FPS) == 2 * per_scene
