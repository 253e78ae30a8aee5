"""Offline lip-sync: an offline clip has no face to move, so the mouths that move are the
sprites' (tasks/stage.py): open while the voice is loud, closed between its syllables.

The audio is measured a video frame at a time, in the band where a voice is (300–3400 Hz, so
a music video's bass and cymbals open no mouth): a frame within `open_db` of the loudest one
opens the mouth. A flap shorter than `MIN_SECONDS` is joined to its neighbours, as an
animator holds a mouth for at least two frames.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy
from pydantic import Field

from tasks.providers.base import LipSyncer, LipsyncRequest, LipsyncResult, Usage

VOICE_BAND_HZ = (300.0, 3400.0)
SILENCE_DBFS = -55.0  # quieter than this is no voice, however quiet the rest
MIN_SECONDS = 0.08


class LocalLipsync(LipSyncer):
    name = "local"
    version = 1

    class Options(LipSyncer.Options):
        model: str = "loudness"
        open_db: float = Field(16.0, gt=0, le=60, description="A frame this many dB under the "
                               "loudest or closer opens the mouth")

    def sync(self, request: LipsyncRequest, workdir: Path) -> LipsyncResult:
        return LipsyncResult(mouth=mouth_open(request.audio, request.fps, self.options.open_db),
                             usage=Usage())


def mouth_open(audio: Path, fps: int, open_db: float) -> list[tuple[float, float]]:
    """When the mouth is open over `audio` (16-bit WAV), in seconds, frame by frame."""
    with wave.open(str(audio)) as reader:
        rate, channels = reader.getframerate(), reader.getnchannels()
        pcm = numpy.frombuffer(reader.readframes(reader.getnframes()), "<i2")
    samples = pcm.reshape(-1, channels).mean(axis=1) / 32768.0  # a track may be stereo
    step = rate / fps
    count = int(len(samples) // step)
    if count == 0:
        return []
    window = int(step)
    spectrum_hz = numpy.fft.rfftfreq(window, 1 / rate)
    band = (spectrum_hz >= VOICE_BAND_HZ[0]) & (spectrum_hz <= VOICE_BAND_HZ[1])
    frames = numpy.stack([samples[int(k * step):int(k * step) + window] for k in range(count)])
    taper = numpy.hanning(window)
    power = numpy.abs(numpy.fft.rfft(frames * taper, axis=1))[:, band] ** 2
    # The band's RMS in dBFS (Parseval's theorem, the taper's energy divided out).
    level = 10 * numpy.log10(2 * power.sum(axis=1) / (window * (taper ** 2).sum()) + 1e-12)
    opened = (level >= level.max() - open_db) & (level > SILENCE_DBFS)
    least = max(1, round(MIN_SECONDS * fps))
    opened = _held(_held(opened, False, least), True, least)
    return [(round(int(start) / fps, 4), round(int(end) / fps, 4)) for start, end in _runs(opened)]


def _runs(flags: numpy.ndarray) -> list[tuple[int, int]]:
    """The [start, end) frames of each run of True in `flags`."""
    edges = numpy.diff(numpy.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(numpy.flatnonzero(edges == 1), numpy.flatnonzero(edges == -1)))


def _held(flags: numpy.ndarray, value: bool, least: int) -> numpy.ndarray:
    """`flags` with each run of `value` shorter than `least` frames, between two runs of the
    other value, turned into the other value."""
    flags = flags.copy()
    runs = _runs(flags == value)
    for start, end in runs:
        if end - start < least and start > 0 and end < len(flags):
            flags[start:end] = not value
    return flags
