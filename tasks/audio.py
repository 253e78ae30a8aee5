"""16-bit PCM WAV: mono from speech providers (the one format they hand to the pipeline), a
music video's track in its own channels; and the scene-length pieces of audio made from them."""

from __future__ import annotations

import io
import wave
from pathlib import Path

from tasks.ffmpeg import run_ffmpeg
from tasks.storyboard import LINE_GAP_SECONDS

QUIET_RATE = 16_000  # the sample rate of a scene that says nothing


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """A WAV file holding 16-bit mono `pcm` at `rate` Hz."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def join_lines(lines: list[bytes], gap: float) -> tuple[bytes, list[tuple[float, float]]]:
    """One WAV of 16-bit mono `lines` with `gap` seconds of quiet between them, and where each
    line starts and ends in it."""
    frames, spans, offset, rate = [], [], 0.0, None
    for index, data in enumerate(lines):
        with wave.open(io.BytesIO(data)) as reader:
            rate = rate or reader.getframerate()
            if (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) != (rate, 1, 2):
                raise ValueError("speech lines differ in format; expected 16-bit mono")
            pcm = reader.readframes(reader.getnframes())
        if index:
            frames.append(b"\0\0" * round(gap * rate))
            offset += round(gap * rate) / rate
        frames.append(pcm)
        spans.append((offset, offset + len(pcm) / 2 / rate))
        offset += len(pcm) / 2 / rate
    return wav_bytes(b"".join(frames), rate), spans


def join_speech(lines: list[bytes], workdir: Path) -> tuple[bytes, list[tuple[float, float]]]:
    """A scene's lines as it says them: one WAV at the highest rate among them (an empty one
    at QUIET_RATE for a scene that says nothing), and where each line starts and ends in it."""
    if not lines:
        return wav_bytes(b"", QUIET_RATE), []
    rate = max(rate_of(line) for line in lines)
    return join_lines([at_rate(line, rate, workdir) for line in lines], LINE_GAP_SECONDS)


def padded(wav: bytes, before: float, after: float) -> bytes:
    """`wav` (16-bit PCM, any rate and channels) after `before` s of quiet, before `after` s."""
    with wave.open(io.BytesIO(wav)) as reader:
        params = reader.getparams()
        pcm = reader.readframes(reader.getnframes())
    frame = params.sampwidth * params.nchannels
    return _wav(b"\0" * frame * round(before * params.framerate) + pcm
                + b"\0" * frame * round(after * params.framerate), params)


def wav_slice(path: Path, start: float, end: float) -> bytes:
    """The part of the WAV at `path` from `start` to `end` s, at its own rate and channels."""
    with wave.open(str(path)) as reader:
        rate = reader.getframerate()
        reader.setpos(round(start * rate))
        pcm = reader.readframes(round(end * rate) - round(start * rate))
        return _wav(pcm, reader.getparams())


def seconds_of(wav: bytes | Path) -> float:
    """How long a WAV (its bytes, or a file) lasts."""
    with wave.open(io.BytesIO(wav) if isinstance(wav, bytes) else str(wav)) as reader:
        return reader.getnframes() / reader.getframerate()


def _wav(pcm: bytes, params: wave._wave_params) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setparams(params)
        out.writeframes(pcm)
    return buffer.getvalue()


def rate_of(wav: bytes) -> int:
    with wave.open(io.BytesIO(wav)) as reader:
        return reader.getframerate()


def at_rate(wav: bytes, rate: int, workdir: Path) -> bytes:
    """`wav` resampled to `rate` Hz by ffmpeg, or as it is when it already is: lines a fallback
    provider spoke come at its own rate, and one video's narration has one."""
    if rate_of(wav) == rate:
        return wav
    source, pcm = workdir / f"resample-{id(wav)}.wav", workdir / f"resample-{id(wav)}.pcm"
    source.write_bytes(wav)
    run_ffmpeg(["-i", str(source), "-ar", str(rate), "-ac", "1", "-f", "s16le", str(pcm)],
               what=f"resample a line of speech to {rate} Hz")
    return wav_bytes(pcm.read_bytes(), rate)
