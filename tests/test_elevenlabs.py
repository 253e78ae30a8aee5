"""ElevenLabsSpeech: the real SDK against a fake ElevenLabs over HTTPS."""

from __future__ import annotations

import base64
import io
import wave

import pytest

from tasks.providers import billing
from tasks.providers.base import ProviderError, SpeechRequest, SpeechResult
from tasks.providers.elevenlabs import ElevenLabsSpeech
from tests.fakes.elevenlabs import TTS_PATH, FakeElevenLabs, alignment, sine_pcm, speech_reply
from tests.fakes.server import Response

KEY = "canary-eleven-key-123"
VOICE = "21m00Tcm4TlvDq8ikWAM"
SENTENCE = "Hello there, it's 3.14 o'clock — state-of-the-art!"


@pytest.fixture
def fake(tls, monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    with FakeElevenLabs(tls) as server:
        yield server


def speak(fake, text: str = SENTENCE, **options) -> SpeechResult:
    provider = ElevenLabsSpeech({"base_url": fake.url, "attempts": 3, "deadline_s": 10,
                                 "timeout_s": 5, **options})
    return provider.synthesize(SpeechRequest(text=text, voice=VOICE, language="en"))


def calls(fake):
    return fake.server.calls("POST", TTS_PATH)


def fail_with(fake, *replies):
    fake.server.fail("POST", TTS_PATH, list(replies))


def read_wav(data: bytes) -> tuple[int, int, int, float]:
    with wave.open(io.BytesIO(data), "rb") as audio:
        return (audio.getnchannels(), audio.getsampwidth(), audio.getframerate(),
                audio.getnframes() / audio.getframerate())


def test_speech_is_a_mono_wav_with_word_timings_that_give_back_the_text(fake):
    result = speak(fake)
    channels, width, rate, seconds = read_wav(result.wav)
    assert (channels, width, rate) == (1, 2, 24000)
    assert " ".join(word.text for word in result.words) == SENTENCE
    assert [word.text for word in result.words][:3] == ["Hello", "there,", "it's"]
    assert result.words[0].start == 0
    for word, following in zip(result.words, result.words[1:]):
        assert word.start < word.end == following.start
    assert result.words[-1].end <= seconds
    assert result.usage.characters == len(SENTENCE)
    assert fake.billable == 1


def test_request_carries_key_header_model_voice_and_pcm_format(fake):
    speak(fake, output_format="pcm_16000")
    [call] = calls(fake)
    assert call.headers["xi-api-key"] == KEY
    assert "authorization" not in call.headers
    assert call.match.group(1) == VOICE
    assert call.query["output_format"] == ["pcm_16000"]
    assert call.json()["text"] == SENTENCE
    assert call.json()["model_id"] == "eleven_multilingual_v2"


def test_words_keep_non_ascii_text_exactly(fake):
    text = "Ça va très bien, 日本 ok."
    result = speak(fake, text)
    assert [word.text for word in result.words] == ["Ça", "va", "très", "bien,", "日本", "ok."]


def truncated_audio_reply() -> Response:
    timing = alignment(SENTENCE)
    return speech_reply(SENTENCE, audio=sine_pcm(timing["character_end_times_seconds"][-1] / 3,
                                                 24000))


@pytest.mark.parametrize("reply", [
    Response(200, b"{not json", {"Content-Type": "application/json"}),
    Response.json({"audio_base64": "", "alignment": alignment(SENTENCE)}),
    Response.json({"audio_base64": "AAEC=*notbase64", "alignment": alignment(SENTENCE)}),
    Response.json({"audio_base64": base64.b64encode(b"\x01\x02\x03").decode(),
                   "alignment": alignment(SENTENCE)}),
    truncated_audio_reply(),
    Response.json({"audio_base64": base64.b64encode(sine_pcm(4, 24000)).decode()}),
    speech_reply(SENTENCE, aligned=alignment("Something else entirely")),
], ids=["garbage-json", "empty-audio", "bad-base64", "odd-bytes", "truncated", "no-alignment",
        "wrong-alignment"])
def test_a_malformed_reply_is_asked_again_and_charged(fake, reply):
    fail_with(fake, reply)
    with billing.metered() as dropped:
        result = speak(fake)
    assert " ".join(word.text for word in result.words) == SENTENCE
    assert len(calls(fake)) == 2
    # ElevenLabs bills the characters of every reply it sent: the dropped one included.
    assert [usage.characters for usage in dropped] == [len(SENTENCE)]


def test_malformed_replies_every_time_fail_after_the_attempts(fake):
    fail_with(fake, *[truncated_audio_reply()] * 3)
    with pytest.raises(ProviderError, match=r"elevenlabs: the audio lasts .* 3 attempts"):
        speak(fake)
    assert len(calls(fake)) == 3


def test_options_reject_formats_that_are_not_raw_pcm():
    with pytest.raises(ValueError):
        ElevenLabsSpeech({"output_format": "mp3_44100_128"})
