"""ElevenLabs speech: raw PCM written as a WAV, word timings from its per-character alignment.

`request.voice` is an ElevenLabs voice id. The request carries its language's code where
ElevenLabs lists the language (config/languages.yaml). The SDK's own retries are switched off
for the call (`max_retries=0`), so `with_retries` decides alone how often a node calls.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import math
import re
from typing import Literal

import httpx
from elevenlabs import ElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.parse_error import ParsingError

from config.secrets import secret
from tasks.audio import wav_bytes
from tasks.language import language
from tasks.providers.base import (
    BrokenOutput, SpeechRequest, SpeechResult, SpeechSynthesizer, Usage, WordTiming)
from tasks.providers.retry import http_error, network_error, with_retries

# How much longer than its audio an alignment may run before the audio counts as truncated.
ALIGNMENT_SLACK_S = 0.5


class ElevenLabsSpeech(SpeechSynthesizer):
    name = "elevenlabs"
    version = 2  # 2: the request carries the language code
    needs_key = "ELEVENLABS_API_KEY"
    # "Rachel", a premade voice; the multilingual models speak every language with it.
    DEFAULT_VOICE = "21m00Tcm4TlvDq8ikWAM"

    class Options(SpeechSynthesizer.Options):
        model: str = "eleven_multilingual_v2"
        # Raw 16-bit mono PCM at this rate (44.1 kHz and up need a Pro plan).
        output_format: Literal["pcm_16000", "pcm_22050", "pcm_24000"] = "pcm_24000"

    def default_voice(self, language_tag: str) -> str:
        return self.DEFAULT_VOICE

    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        key = secret(self.needs_key)
        with httpx.Client(timeout=self.options.timeout_s, follow_redirects=True) as http:
            client = ElevenLabs(api_key=key, base_url=self.options.base_url,
                                timeout=self.options.timeout_s, httpx_client=http)
            # A reply that does not read is billed and asked again, like a transient error.
            return with_retries(lambda: self._speak(client, request, key),
                                attempts=self.options.attempts,
                                deadline_s=self.options.deadline_s)

    def _speak(self, client: ElevenLabs, request: SpeechRequest, key: str) -> SpeechResult:
        billed = Usage(characters=len(request.text))
        reply = self._convert(client, request, key, billed)
        rate = int(self.options.output_format.removeprefix("pcm_"))
        try:
            pcm = _decode_audio(getattr(reply, "audio_base_64", None))
            duration = len(pcm) / 2 / rate
            words = word_timings(request.text, getattr(reply, "alignment", None), duration)
        except BrokenOutput as error:
            raise BrokenOutput(str(error), billed) from None
        return SpeechResult(wav=wav_bytes(pcm, rate), words=words, usage=billed)

    def _convert(self, client: ElevenLabs, request: SpeechRequest, key: str, billed: Usage):
        code = language(request.language).elevenlabs
        try:
            return client.text_to_speech.convert_with_timestamps(
                request.voice, text=request.text, model_id=self.model,
                output_format=self.options.output_format,
                **({"language_code": code} if code else {}),
                request_options={"max_retries": 0})
        except ApiError as error:
            status = error.status_code or 0
            if 200 <= status < 300:  # the SDK could not read a successful reply as JSON
                raise BrokenOutput(f"{self.name}: unreadable reply", billed) from None
            headers = {name.lower(): value for name, value in (error.headers or {}).items()}
            raise http_error(self.name, status, _scrub(str(error.body), key),
                             headers.get("retry-after")) from None
        except ParsingError:
            raise BrokenOutput(f"{self.name}: reply does not have the expected shape",
                               billed) from None
        except Exception as error:
            mapped = network_error(self.name, error)
            if mapped is None:
                raise
            raise mapped from None


def _scrub(text: str, key: str) -> str:
    return text.replace(key, "***") if key else text


def _decode_audio(encoded: str | None) -> bytes:
    try:
        pcm = base64.b64decode(encoded or "", validate=True)
    except (binascii.Error, ValueError):
        raise BrokenOutput("elevenlabs: the audio is not valid base64") from None
    if len(pcm) < 2 or len(pcm) % 2 or not any(pcm):
        raise BrokenOutput(f"elevenlabs: no usable 16-bit audio ({len(pcm)} bytes)")
    return pcm


def word_timings(text: str, alignment, duration: float) -> list[WordTiming]:
    """One timing per written word (a run of non-space characters, punctuation included), so the
    words joined by spaces give back the text: a word starts with its first character and ends
    where the next word starts, the last one with its last character."""
    characters = getattr(alignment, "characters", None)
    starts = getattr(alignment, "character_start_times_seconds", None)
    ends = getattr(alignment, "character_end_times_seconds", None)
    if characters is None or starts is None or ends is None:
        raise BrokenOutput("elevenlabs: the reply has no alignment")
    if (not len(characters) == len(starts) == len(ends)
            or not all(isinstance(c, str) for c in characters) or "".join(characters) != text):
        raise BrokenOutput("elevenlabs: the alignment does not match the text")
    if not all(isinstance(t, (int, float)) and math.isfinite(t) and t >= 0 for t in starts + ends):
        raise BrokenOutput("elevenlabs: the alignment has invalid times")
    if ends and max(ends) > duration + ALIGNMENT_SLACK_S:
        raise BrokenOutput(f"elevenlabs: the audio lasts {duration:.2f} s but its alignment runs "
                            f"to {max(ends):.2f} s (truncated audio?)")
    offsets, position = [], 0  # where each alignment entry begins in the text
    for entry in characters:
        offsets.append(position)
        position += len(entry)
    tokens = [(match.start(), match.end()) for match in re.finditer(r"\S+", text)]
    if not tokens:
        return []

    def entry(offset: int) -> int:
        return bisect.bisect_right(offsets, offset) - 1

    word_starts: list[float] = []
    for first, _ in tokens:  # ordered even where the alignment is not
        start = min(float(starts[entry(first)]), duration)
        word_starts.append(max(start, word_starts[-1]) if word_starts else start)
    last_end = min(max(float(ends[entry(tokens[-1][1] - 1)]), word_starts[-1]), duration)
    following = word_starts[1:] + [last_end]
    return [WordTiming(text=text[first:last], start=start, end=end)
            for (first, last), start, end in zip(tokens, word_starts, following)]
