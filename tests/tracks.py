"""Tracks with known beats, written as WAV files: metronome clicks (an accented click starts
each bar) and a drum loop (kick, snare, hats and a bass line). Numpy only, so the beat-tracking
benchmark (bench/beat_tracking.py) runs them with any tracker."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 44_100


def beats_of(bpm: float, seconds: float, first: float = 0.5) -> list[float]:
    """The beats of a track at `bpm` whose first beat is at `first` seconds."""
    step = 60 / bpm
    return [first + k * step for k in range(int((seconds - first) / step) + 1)
            if first + k * step < seconds - 0.05]


def click_track(path: Path, bpm: float, seconds: float, first: float = 0.5) -> list[float]:
    """A metronome at `bpm` (a higher, louder click on each bar's first beat), written to
    `path`; returns its beats."""
    samples = np.zeros(round(seconds * RATE))
    beats = beats_of(bpm, seconds, first)
    for number, beat in enumerate(beats):
        accented = number % 4 == 0
        _add(samples, beat, _tone(1760 if accented else 1100, 0.03, 0.9 if accented else 0.5))
    _write(path, samples)
    return beats


def drum_loop(path: Path, bpm: float, seconds: float, first: float = 0.5) -> list[float]:
    """Kick on beats 1 and 3, snare on 2 and 4, closed hats on eighths and a bass note on each
    bar, written to `path`; returns its beats."""
    rng = np.random.default_rng(7)
    samples = np.zeros(round(seconds * RATE))
    beats = beats_of(bpm, seconds, first)
    step = 60 / bpm
    for number, beat in enumerate(beats):
        if number % 2 == 0:
            _add(samples, beat, _kick())
        else:
            _add(samples, beat, rng.normal(0, 0.35, round(0.12 * RATE)) * _decay(0.12, 25))
        for half in (0, step / 2):
            _add(samples, beat + half, rng.normal(0, 0.08, round(0.04 * RATE)) * _decay(0.04, 90))
        if number % 4 == 0:
            _add(samples, beat, _tone(55 * 2 ** ((number // 4 % 4) / 12), 4 * step * 0.9, 0.25))
    _write(path, samples)
    return beats


def _tone(frequency: float, seconds: float, level: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return level * np.sin(2 * np.pi * frequency * t) * _decay(seconds, 6 / seconds)


def _kick() -> np.ndarray:
    t = np.arange(round(0.25 * RATE)) / RATE
    return 0.9 * np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 12)


def _decay(seconds: float, rate: float) -> np.ndarray:
    return np.exp(-np.arange(round(seconds * RATE)) / RATE * rate)


def _add(samples: np.ndarray, at: float, sound: np.ndarray) -> None:
    start = round(at * RATE)
    end = min(len(samples), start + len(sound))
    samples[start:end] += sound[:end - start]


def _write(path: Path, samples: np.ndarray) -> None:
    peak = max(1.0, float(np.max(np.abs(samples))))
    pcm = np.round(samples / peak * 0.9 * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setparams((1, 2, RATE, 0, "NONE", "not compressed"))
        out.writeframes(pcm.tobytes())
