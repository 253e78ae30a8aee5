"""A fake ElevenLabs API: text-to-speech with timestamps, answered as the real service does.

    fake = FakeElevenLabs(tls)
    with fake:
        ElevenLabsSpeech({"base_url": fake.url}).synthesize(...)
    fake.billable, fake.characters  # replies that carried audio, and the characters billed
    fake.server.calls("POST", TTS_PATH)

The audio is a real 16-bit PCM sine made at request time, at the rate the `output_format`
query asks for, with a plausible per-character alignment of the request's text.
"""

from __future__ import annotations

import base64
import math
import struct

from tests.fakes.server import FakeServer, Request, Response

TTS_PATH = r"^/v1/text-to-speech/([^/]+)/with-timestamps$"
SECONDS_PER_CHARACTER = 0.05
SECONDS_PER_SPACE = 0.03
TRAILING_SILENCE = 0.1


def sine_pcm(seconds: float, rate: int, frequency: float = 220.0) -> bytes:
    """Little-endian 16-bit mono PCM of a quiet sine."""
    count = round(seconds * rate)
    samples = (round(8000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(count))
    return struct.pack(f"<{count}h", *samples)


def alignment(text: str) -> dict:
    """One entry per character, spaces shorter, each starting where the one before ended."""
    starts, ends, clock = [], [], 0.0
    for char in text:
        starts.append(round(clock, 3))
        clock += SECONDS_PER_SPACE if char.isspace() else SECONDS_PER_CHARACTER
        ends.append(round(clock, 3))
    return {"characters": list(text), "character_start_times_seconds": starts,
            "character_end_times_seconds": ends}


def speech_reply(text: str, rate: int = 24000, *, audio: bytes | None = None,
                 aligned: dict | None = None) -> Response:
    """The JSON ElevenLabs answers with; `audio` or `aligned` replace the real ones."""
    timing = aligned if aligned is not None else alignment(text)
    ends = timing["character_end_times_seconds"]
    if audio is None:
        audio = sine_pcm((ends[-1] if ends else 0.0) + TRAILING_SILENCE, rate)
    return Response.json({"audio_base64": base64.b64encode(audio).decode(),
                          "alignment": timing, "normalized_alignment": timing})


class FakeElevenLabs:
    def __init__(self, tls):
        self.server = FakeServer(tls)
        self.server.route("POST", TTS_PATH, self._speak)
        self.url = self.server.url
        self.billable = 0  # characters are billed per successful reply
        self.characters = 0

    def _speak(self, request: Request) -> Response:
        body = request.json()
        output_format = request.query.get("output_format", ["mp3_44100_128"])[0]
        if not output_format.startswith("pcm_"):
            return Response.json({"detail": {"status": "invalid_output_format"}}, status=400)
        self.billable += 1
        self.characters += len(body["text"])
        return speech_reply(body["text"], int(output_format.removeprefix("pcm_")))

    def __enter__(self) -> FakeElevenLabs:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)
