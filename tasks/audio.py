"""16-bit mono PCM WAV, the one audio format speech providers hand to the pipeline."""

from __future__ import annotations

import io
import wave


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """A WAV file holding 16-bit mono `pcm` at `rate` Hz."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()
