"""Music videos: a track's beats set the cuts, its length the video's, and it is the
soundtrack; timed lyrics are its captions; bad tracks and lyrics are refused."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from flows.creative import Creative
from flows.video import make_video
from tasks.ffmpeg import ffmpeg_exe, probe
from tasks.providers.gemini import GeminiPlanner
from tasks.providers.local_planner import LocalPlanner
from tasks.storyboard import Storyboard, VideoRequest
from tests.fakes.google import FakeGoogle, prompt_text
from tests.test_cli_input import _assert_refused, run
from tests.tracks import click_track

TOLERANCE = 0.03  # seconds: a cut this close to a beat is on it
FPS = 30

LYRICS = "[ti:Night]\n[00:01.20]Neon on the water\n[00:06.00]We drive until the morning\n"


def planned(track: Path, lyrics: Path | None = None, **creative) -> Storyboard:
    request = VideoRequest(topic="a city at night", **Creative(
        mode="music-video", track=track, lyrics=lyrics, **creative).request_fields())
    return LocalPlanner().plan(request).storyboard


def near(times: list[float], beats: list[float]) -> list[float]:
    return [min(abs(time - beat) for beat in beats) for time in times]


@pytest.mark.parametrize("bpm", [120, 87])
def test_every_cut_falls_on_a_beat_and_the_shots_last_whole_bars(tmp_path, bpm):
    beats = click_track(tmp_path / "click.wav", bpm, 40)
    board = planned(tmp_path / "click.wav")
    spans = [board.spans()[scene.id] for scene in board.ordered_scenes()]
    cuts = [end for _, end in spans[:-1]]
    assert len(cuts) >= 5
    assert max(near(cuts, beats)) < TOLERANCE
    # Where the video's frames change: the nearest frame to each cut.
    assert max(near([round(cut * FPS) / FPS for cut in cuts], beats)) < TOLERANCE
    bar = 4 * 60 / bpm
    assert all(abs(d / bar - round(d / bar)) * bar < TOLERANCE for d in np.diff(cuts))
    assert spans[-1][1] == pytest.approx(board.track.seconds, abs=1e-6)
    assert all(not scene.lines for scene in board.scenes)


def test_a_look_s_shot_lengths_decide_how_many_bars_a_shot_lasts(tmp_path):
    click_track(tmp_path / "click.wav", 120, 40)  # a bar is 2 s
    quick, slow = (planned(tmp_path / "click.wav", director=look)
                   for look in ("anime", "cold-epic"))
    assert max(scene.duration for scene in quick.scenes[:-1]) <= 4.03
    assert min(scene.duration for scene in slow.scenes[:-1]) >= 3.97
    assert len(quick.scenes) > len(slow.scenes)


def decoded(path: Path, seconds: float | None = None) -> np.ndarray:
    """Mono samples at 16 kHz."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000",
                          "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.float32)


def hard_cuts(video: Path) -> list[float]:
    """Where the picture changes at once: frames far from the one before them, in seconds."""
    info = probe(video)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-vf", "scale=32:56",
                          "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True,
                         check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 56 * 32).astype(float)
    change = np.abs(np.diff(frames, axis=0)).mean(axis=1)
    return [(index + 1) / info.fps for index in np.flatnonzero(change > 6)]


@pytest.mark.usefixtures("prefect_api_url", "workspace")
@pytest.mark.parametrize("bpm", [120, 87])
def test_a_music_video_lasts_its_track_plays_it_and_cuts_on_its_beats(tmp_path, monkeypatch,
                                                                       bpm):
    monkeypatch.setenv("REELFLOW_SHORT_SIDE", "144")
    monkeypatch.setenv("REELFLOW_FPS", str(FPS))  # a frame is 33 ms: a cut lands within 17
    beats = click_track(tmp_path / "click.wav", bpm, 24)
    (tmp_path / "night.lrc").write_text(LYRICS, encoding="utf-8")
    summary = make_video(topic="a city at night", creative=Creative(
        mode="music-video", track=tmp_path / "click.wav", lyrics=tmp_path / "night.lrc",
        director="handheld-documentary"))

    info = probe(summary.video)
    with wave.open(str(tmp_path / "click.wav")) as track:
        seconds = track.getnframes() / track.getframerate()
    assert abs(info.duration - seconds) <= 1 / info.fps
    heard, played = decoded(summary.video), decoded(tmp_path / "click.wav")
    length = min(len(heard), len(played))
    assert abs(len(heard) - len(played)) <= 16_000 / info.fps
    correlation = np.corrcoef(heard[:length], played[:length])[0, 1]
    assert correlation > 0.95  # the same sound, through AAC: no gain, no pad, no shift
    cuts = hard_cuts(summary.video)
    board = Storyboard.model_validate_json(
        (summary.video.parent / "storyboard.json").read_text(encoding="utf-8"))
    assert len(cuts) == len(board.scenes) - 1 and max(near(cuts, beats)) < TOLERANCE
    captions = (summary.video.parent / "subtitles.ass").read_text(encoding="utf-8")
    assert "Neon" in captions and "morning" in captions
    first = next(line for line in captions.splitlines()
                 if line.startswith("Dialogue:") and "Neon" in line)
    assert first.split(",")[1] <= "0:00:01.20" < first.split(",")[2]


def silent(path: Path, seconds: float, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setparams((1, 2, rate, 0, "NONE", "not compressed"))
        out.writeframes(b"\0\0" * round(seconds * rate))
    return path


BAD = {  # case: (the options after --mode music-video, given the test's folder; the error)
    "not audio": (lambda d: ["--track", str(d / "notes.txt")], "track: 'notes.txt' is not audio"),
    "silent": (lambda d: ["--track", str(silent(d / "s.wav", 10))], "track: 's.wav' is silent"),
    "short": (lambda d: ["--track", str(silent(d / "s.wav", 3))], "track: 's.wav' lasts 3.0 s"),
    "long": (lambda d: ["--track", str(silent(d / "s.wav", 15 * 60 + 5))],
             "track: 's.wav' lasts 905.0 s"),
    "lyrics late": (lambda d: ["--track", str(d / "click.wav"), "--lyrics", str(d / "late.lrc")],
                    "lyrics: line 2 starts at 0:09.50"),
    "no track": (lambda d: [], "track: a music-video needs its track"),
}


@pytest.mark.parametrize("case", [*BAD, "track of an explainer"])
def test_a_bad_track_or_lyrics_is_refused_with_one_line(case, tmp_path, cli_env, workspace):
    click_track(tmp_path / "click.wav", 120, 8)
    (tmp_path / "late.lrc").write_text("[00:01.00]early\n[00:09.50]too late\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a song", encoding="utf-8")
    if case in BAD:
        given, field = BAD[case]
        args = ["make", "a city at night", "--mode", "music-video", *given(tmp_path)]
    else:
        args, field = (["make", "a city at night", "--track", str(tmp_path / "click.wav")],
                       "track: is for --mode music-video only")
    _assert_refused(run(args, cli_env), field, workspace)


def test_a_language_model_plans_one_scene_per_cut_knowing_the_tempo_and_the_lyrics(
        tls, tmp_path, monkeypatch):
    click_track(tmp_path / "click.wav", 120, 30)
    (tmp_path / "night.lrc").write_text(LYRICS, encoding="utf-8")
    request = VideoRequest(topic="a city at night", **Creative(
        mode="music-video", track=tmp_path / "click.wav",
        lyrics=tmp_path / "night.lrc").request_fields())
    monkeypatch.setenv("GEMINI_API_KEY", "canary-gemini-0001")
    with FakeGoogle(tls) as google:
        board = GeminiPlanner({"base_url": google.url}).plan(request).storyboard
        [call] = google.calls("POST", "generateContent")

    asked = prompt_text(call)
    assert "120 BPM" in asked and "Neon on the water" in asked and "a city at night" in asked
    cuts = request.cuts()
    assert [board.spans()[s.id][1] for s in board.ordered_scenes()] == pytest.approx(cuts)
    assert all(not scene.lines for scene in board.scenes)
