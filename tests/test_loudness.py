"""Loudness to a target, measured on the published mp4 (after AAC) with ffmpeg's EBU R128
meter: real eSpeak speech, made quiet or loud, with and without the music pad."""

from __future__ import annotations

import math
import struct
import wave
from array import array
from pathlib import Path

import pytest

from tasks.ffmpeg import INTERMEDIATE_VIDEO_ARGS, run_ffmpeg
from tasks.loudness import TRUE_PEAK_MAX, measure
from tasks.montage import SceneMedia
from tests.composing import compose_video
from tasks.providers.base import SpeechRequest
from tasks.providers.espeak import EspeakSpeech

WIDTH, HEIGHT, FPS = 180, 320, 12
LINES = ["Loudness decides whether a short video sounds finished.",
         "Every platform turns it up or down to its own level."]
# What the offline planner wrote for "How volcanoes work": the render where AAC's default coder
# let limited speech peak at +0.5 dBTP.
SIX_SCENES = ["Ever wondered about How volcanoes work? Let's find out.",
              "Start with the basics: How volcanoes work is simpler than it looks.",
              "Here is the part most people miss about How volcanoes work.",
              "A real example makes How volcanoes work easy to picture.",
              "Now the surprising detail behind How volcanoes work.",
              "That's How volcanoes work in a nutshell. Thanks for watching!"]
LEVELS = {"quiet": 0.02, "as spoken": 1.0, "loud": 6.0}  # x eSpeak's samples; loud clips


def tone(path: Path, amplitude: float, seconds: float = 5.0, rate: int = 48_000) -> Path:
    samples = round(seconds * rate)
    with wave.open(str(path), "wb") as out:
        out.setparams((1, 2, rate, 0, "NONE", "not compressed"))
        out.writeframes(struct.pack(f"<{samples}h", *(
            round(amplitude * 32767 * math.sin(2 * math.pi * 997 * n / rate))
            for n in range(samples))))
    return path


def voice(path: Path, text: str, gain: float) -> tuple[Path, list]:
    """eSpeak saying `text`, its samples scaled by `gain` (clipped at full scale, as a
    recording made too loud is)."""
    said = EspeakSpeech().synthesize(SpeechRequest(text=text, voice="en-us", language="en"))
    path.write_bytes(said.wav)
    with wave.open(str(path), "rb") as source:
        params, pcm = source.getparams(), array("h", source.readframes(source.getnframes()))
    scaled = array("h", (max(-32768, min(32767, round(s * gain))) for s in pcm))
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(scaled.tobytes())
    return path, said.words


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c=0x203040:s={WIDTH}x{HEIGHT}:r={FPS}:d=1",
                *INTERMEDIATE_VIDEO_ARGS, str(path)], what="make a test clip")
    return path


def render(tmp_path: Path, clip: Path, level: str, music: bool, target: float,
           pad: float = 0.5, lines: list[str] = LINES):
    scenes = []
    for index, text in enumerate(lines):
        audio, words = voice(tmp_path / f"line{index}.wav", text, LEVELS[level])
        scenes.append(SceneMedia(clip=clip, audio=audio, words=words))
    video = tmp_path / "video.mp4"
    composed = compose_video(scenes, width=WIDTH, height=HEIGHT, fps=FPS, music=music, pad=pad,
                             loudness=target, video_out=video, subtitles_out=tmp_path / "c.ass",
                             workdir=tmp_path / "work")
    return composed, video


def test_the_meter_reads_a_known_tone(tmp_path):
    """A 997 Hz sine peaking at -20 dBFS in one channel is -23 LUFS (EBU Tech 3341)."""
    measured = measure(tone(tmp_path / "tone.wav", 0.1))
    assert measured.integrated == pytest.approx(-23.0, abs=0.1)
    assert measured.true_peak == pytest.approx(-20.0, abs=0.1)


@pytest.mark.parametrize("level, music, target", [
    ("quiet", False, -14), ("quiet", True, -14), ("loud", False, -14), ("loud", True, -14),
    ("as spoken", True, -14), ("loud", True, -23), ("quiet", False, -23), ("as spoken", False, -16),
])
def test_a_short_video_meets_its_loudness_target_whatever_the_voice_level(
        tmp_path, clip, level, music, target):
    composed, video = render(tmp_path, clip, level, music, target)

    published = measure(video)
    assert published.integrated == pytest.approx(target, abs=1.0)
    assert published.true_peak <= TRUE_PEAK_MAX
    assert composed.loudness == published  # what the manifest records is what was published
    assert 5 < composed.duration < 20  # a short video: where one-pass normalisers miss
    print(f"{level}, music {music}, target {target}: {published.integrated} LUFS, "
          f"{published.true_peak} dBTP, {composed.passes} passes")


def test_a_six_scene_video_with_music_meets_the_target(tmp_path, clip):
    composed, video = render(tmp_path, clip, "as spoken", True, -14, lines=SIX_SCENES)

    published = measure(video)
    assert published.integrated == pytest.approx(-14, abs=1.0)
    assert published.true_peak <= TRUE_PEAK_MAX
    print(f"six scenes, {composed.duration:.1f} s: {published.integrated} LUFS, "
          f"{published.true_peak} dBTP, {composed.passes} passes")


def test_the_music_sits_at_the_same_level_under_a_quiet_or_a_normal_voice(tmp_path, clip):
    """The voice is levelled before the mix: the pad, heard in the pause between scenes, is as
    loud against the target whatever level the voice came at."""
    levels = []
    for level in ("quiet", "as spoken"):
        folder = tmp_path / level.replace(" ", "-")
        folder.mkdir()
        composed, video = render(folder, clip, level, True, -14, pad=2.0)
        pause = folder / "pause.wav"  # within the last scene's pad: the music alone
        run_ffmpeg(["-ss", f"{composed.duration - 1.5:.3f}", "-t", "1", "-i", str(video),
                    "-vn", str(pause)], what="cut the pause")
        with wave.open(str(pause), "rb") as cut:
            samples = array("h", cut.readframes(cut.getnframes()))
        levels.append(20 * math.log10(math.sqrt(sum(s * s for s in samples) / len(samples))))
    assert levels[0] == pytest.approx(levels[1], abs=1.5), levels
