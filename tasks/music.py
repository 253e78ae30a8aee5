"""A music video's backing track, read: decoded by ffmpeg, checked (audio, not silent, 5 s to
15 min), and its beats, bars and sections found with librosa (BENCHMARKS.md says why librosa);
and its lyrics, plain or timed (LRC).

Each beat librosa finds is moved onto the attack of the sound at it (its sharpest rise in
loudness within BEAT_SNAP_SECONDS), so a cut lands on the hit a viewer hears, not on the
tracker's frame grid. Bars are taken as four beats, starting on the beat whose phase carries
the strongest onsets (the accented one).
"""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

from cache.keys import file_digest
from tasks.ffmpeg import ffmpeg_exe
from tasks.providers.base import WordTiming
from tasks.storyboard import MAX_TRACK_SECONDS, MIN_TRACK_SECONDS, LyricLine, Track

SAMPLE_RATE = 22_050
HOP = 256  # librosa's onset envelope: 11.6 ms a frame
ATTACK_HOP = 32  # the loudness envelope beats are snapped on: 1.5 ms a step
BEAT_SNAP_SECONDS = 0.04
BEATS_PER_BAR = 4
BASS_HZ = 250.0
SILENT_DBFS = -50.0
SECONDS_PER_SECTION = 30  # about how long a section of a song is
MAX_LYRICS_BYTES = 200_000
SUNG_SECONDS_PER_WORD = 0.6
SUNG_LEAD_SECONDS = 0.25
LRC_TIME = re.compile(r"\[(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)\]")
LRC_TAG = re.compile(r"^\[[a-z]+:.*\]$", re.IGNORECASE)  # [ar: ...], [ti: ...]: not sung


class TrackError(ValueError):
    """A track or its lyrics cannot be used: one line, naming the field first."""


def read_track(path: Path, lyrics: Path | None = None) -> Track:
    """`path` read as a track, with `lyrics` (plain text, or LRC with timings) if given."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise TrackError(f"track: {str(path)!r} does not exist")
    track = analysed(str(path), file_digest(path))
    if lyrics is None:
        return track
    text, sung = read_lyrics(Path(lyrics).expanduser(), track.seconds)
    return track.model_copy(update={"lyrics": text, "sung": sung})


@lru_cache(maxsize=8)
def analysed(path: str, digest: str) -> Track:
    """The track at `path` (its bytes' digest `digest`: what the cache is keyed by), read."""
    samples = decoded(path)
    seconds = len(samples) / SAMPLE_RATE
    if not MIN_TRACK_SECONDS <= seconds <= MAX_TRACK_SECONDS:
        raise TrackError(f"track: {Path(path).name!r} lasts {seconds:.1f} s; a track lasts "
                         f"{MIN_TRACK_SECONDS} s to {MAX_TRACK_SECONDS // 60} min")
    level = 20 * np.log10(np.sqrt(np.mean(samples ** 2)) + 1e-12)
    if level < SILENT_DBFS:
        raise TrackError(f"track: {Path(path).name!r} is silent ({level:.0f} dBFS)")
    beats = beat_times(samples)
    if len(beats) < 2:
        raise TrackError(f"track: {Path(path).name!r} has no beat to cut on")
    bars = beats[_downbeat(beats, samples)::BEATS_PER_BAR]
    return Track(path=path, digest=digest, seconds=round(seconds, 6),
                 tempo=round(60 / float(np.median(np.diff(beats))), 2),
                 beats=[round(t, 4) for t in beats], bars=[round(t, 4) for t in bars],
                 sections=[round(t, 4) for t in _sections(samples, bars)])


def decoded(path: str) -> np.ndarray:
    """The track's first audio stream as mono float samples at SAMPLE_RATE."""
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0",
         "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "f32le", "-"], capture_output=True)
    if completed.returncode != 0 or not completed.stdout:
        said = completed.stderr.decode(errors="replace").strip().splitlines()
        raise TrackError(f"track: {Path(path).name!r} is not audio ffmpeg can read"
                         + (f" ({said[-1]})" if said else ""))
    return np.frombuffer(completed.stdout, np.float32).astype(np.float64)


def beat_times(samples: np.ndarray) -> list[float]:
    """The beats, in seconds, each on its attack."""
    import librosa  # a second to import: only music videos pay it

    onsets = librosa.onset.onset_strength(y=samples, sr=SAMPLE_RATE, hop_length=HOP)
    _, frames = librosa.beat.beat_track(onset_envelope=onsets, sr=SAMPLE_RATE, hop_length=HOP)
    rough = librosa.frames_to_time(frames, sr=SAMPLE_RATE, hop_length=HOP)
    loudness = librosa.feature.rms(y=samples, frame_length=4 * ATTACK_HOP,
                                   hop_length=ATTACK_HOP, center=False)[0]
    rise = np.diff(loudness, prepend=loudness[0])
    window = round(BEAT_SNAP_SECONDS * SAMPLE_RATE / ATTACK_HOP)
    beats = []
    for time in rough:
        middle = round(time * SAMPLE_RATE / ATTACK_HOP)
        low, high = max(0, middle - window), min(len(rise), middle + window + 1)
        if low >= high:
            continue
        step = low + int(np.argmax(rise[low:high]))
        # Frame k spans samples [k, k + 4) hops: it rises most once the attack is in it.
        beats.append((step + 3) * ATTACK_HOP / SAMPLE_RATE)
    return sorted(set(beats))


def _downbeat(beats: list[float], samples: np.ndarray) -> int:
    """Which of the first BEATS_PER_BAR beats starts a bar: the phase whose onsets are the
    strongest on average, across the spectrum or in the bass (kick and bass land on the one,
    where a snare's backbeat is louder across the spectrum), whichever tells its phases
    apart more clearly."""
    import librosa

    heard = [librosa.onset.onset_strength(y=samples, sr=SAMPLE_RATE, hop_length=HOP),
             librosa.onset.onset_strength(y=samples, sr=SAMPLE_RATE, hop_length=HOP,
                                          fmax=BASS_HZ, n_mels=32)]
    # The envelope peaks a frame or two after the attack: its highest just after each beat.
    frames = [round(t * SAMPLE_RATE / HOP) for t in beats]
    best, clearest = 0, 0.0
    for onsets in heard:
        strength = [np.max(onsets[frame:frame + 3]) if frame < len(onsets) else 0.0
                    for frame in frames]
        phases = np.array([np.mean(strength[phase::BEATS_PER_BAR]) for phase in
                           range(min(BEATS_PER_BAR, len(beats)))])
        contrast = phases.max() / (phases.mean() + 1e-9)
        if contrast > clearest:
            best, clearest = int(np.argmax(phases)), contrast
    return best


def _sections(samples: np.ndarray, bars: list[float]) -> list[float]:
    """Where the track's sections start (bar lines), by librosa's agglomerative clustering of
    its timbre bar by bar; none for a track too short to have several."""
    import librosa

    count = round(len(samples) / SAMPLE_RATE / SECONDS_PER_SECTION)
    if count < 2 or len(bars) < 2 * count:
        return []
    features = librosa.feature.mfcc(y=samples, sr=SAMPLE_RATE, hop_length=HOP)
    frames = librosa.time_to_frames(bars, sr=SAMPLE_RATE, hop_length=HOP)
    per_bar = librosa.util.sync(features, [int(f) for f in frames if f < features.shape[1]])
    starts = librosa.segment.agglomerative(per_bar, count)
    # sync's first column is what comes before the first bar line: column k is bar k - 1.
    return sorted({bars[max(0, int(k) - 1)] for k in starts if k > 1})


def read_lyrics(path: Path, seconds: float) -> tuple[str, list[LyricLine]]:
    """A lyrics file: its text, and its timed lines when it is LRC ([mm:ss.xx] before a
    line; a line ends where the next begins, or with the track). Timings outside the track
    are refused."""
    try:
        if path.stat().st_size > MAX_LYRICS_BYTES:
            raise TrackError(f"lyrics: {path.name!r} is over {MAX_LYRICS_BYTES // 1000} kB")
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise TrackError(f"lyrics: cannot read {str(path)!r}: {error}") from None
    timed, plain = [], []
    for number, line in enumerate(raw.splitlines(), 1):
        stamps = LRC_TIME.findall(line)
        if LRC_TAG.match(line.strip()) and not stamps:
            continue
        text = LRC_TIME.sub("", line).strip()
        plain.append(text)
        for minutes, rest in stamps:
            start = int(minutes) * 60 + float(rest.replace(":", "."))
            if start >= seconds:
                raise TrackError(f"lyrics: line {number} starts at {_clock(start)}, after the "
                                 f"track's end ({_clock(seconds)})")
            timed.append((start, text))
    timed.sort()
    sung = [LyricLine(start=start, end=next_start, text=text)
            for (start, text), (next_start, _) in zip(timed, [*timed[1:], (seconds, "")])
            if text]
    return "\n".join(plain).strip(), sung


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:05.2f}"


def sung_words(track: Track, start: float, end: float) -> list[WordTiming]:
    """The words sung from `start` to `end` seconds into `track`, timed from `start` for its
    karaoke captions: each timed line's words share its time evenly (a line is held no longer
    than SUNG_SECONDS_PER_WORD a word); a word belongs to the scene it starts in, or to the
    next when it starts less than SUNG_LEAD_SECONDS before a cut (a line is not split off its
    first word)."""
    words = []
    for line in track.sung:
        said = line.text.split()
        held = min(line.end, line.start + SUNG_SECONDS_PER_WORD * len(said)) - line.start
        step = held / len(said)
        for index, word in enumerate(said):
            at = line.start + index * step
            if start - SUNG_LEAD_SECONDS <= at < end - SUNG_LEAD_SECONDS or (
                    start <= at < end and end >= track.seconds):
                shown = max(at, start)
                words.append(WordTiming(text=word, start=round(shown - start, 4),
                                        end=round(min(max(at + step, shown), end) - start, 4)))
    return words
