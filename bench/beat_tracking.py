"""Benchmark: two beat trackers on tracks whose beats are known (tests/tracks.py: metronomes
at 120, 87 and 140 BPM, drum loops at 100 and 72 BPM), and the time each takes on a 3-minute
drum loop.

    .venv/bin/python bench/beat_tracking.py librosa   # reelflow's (tasks/music.py)
    VENV/bin/python bench/beat_tracking.py aubio      # aubio 0.4.9 needs numpy<2: its own venv

For each track: the tempo found, the share of true beats with a found beat within 30 ms (a
frame at 30 fps is 33 ms), the mean distance to the nearest found beat, and whether the bars
start on the accented beat (librosa; aubio finds no bars).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.tracks import click_track, drum_loop  # noqa: E402

TRACKS = [("click 120 BPM", click_track, 120, 30), ("click 87 BPM", click_track, 87, 30),
          ("click 140 BPM", click_track, 140, 30), ("drums 100 BPM", drum_loop, 100, 30),
          ("drums 72 BPM", drum_loop, 72, 30)]
TOLERANCE = 0.03


def librosa_tracker(path: Path) -> tuple[float, list[float], list[float]]:
    from tasks.music import read_track

    track = read_track(path)
    return track.tempo, track.beats, track.bars


def aubio_tracker(path: Path) -> tuple[float, list[float], list[float]]:
    import aubio

    hop = 256
    source = aubio.source(str(path), 0, hop)
    tempo = aubio.tempo("default", 1024, hop, source.samplerate)
    beats = []
    while True:
        samples, read = source()
        if tempo(samples):
            beats.append(tempo.get_last_s())
        if read < hop:
            break
    return float(tempo.get_bpm()), beats, []


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "librosa"
    tracker = {"librosa": librosa_tracker, "aubio": aubio_tracker}[name]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        started = time.perf_counter()
        tracker(_warm(folder))  # imports and compiled code: paid once a process
        print(f"{name}: first call (imports, compilation) {time.perf_counter() - started:.1f} s")
        print(f"{'track':16s} {'tempo':>7s} {'within 30 ms':>13s} {'mean error':>11s} bars")
        for label, make, bpm, seconds in TRACKS:
            truth = make(folder / "track.wav", bpm, seconds)
            tempo, beats, bars = tracker(folder / "track.wav")
            errors = [min(abs(found - beat) for found in beats) for beat in truth]
            hit = sum(error <= TOLERANCE for error in errors) / len(truth)
            on_the_one = (min(abs(bars[0] - beat) for beat in truth[::4]) <= TOLERANCE
                          if bars else None)
            print(f"{label:16s} {tempo:7.1f} {hit:12.0%} {statistics.mean(errors) * 1000:8.1f} ms "
                  f"{'-' if on_the_one is None else 'on the one' if on_the_one else 'off'}")
        drum_loop(folder / "long.wav", 128, 180)
        started = time.perf_counter()
        tracker(folder / "long.wav")
        print(f"3-minute track: {time.perf_counter() - started:.2f} s")


def _warm(folder: Path) -> Path:
    click_track(folder / "warm.wav", 100, 6)
    return folder / "warm.wav"


if __name__ == "__main__":
    main()
