"""EspeakSpeech against the real eSpeak NG library."""

import io
import os
import subprocess
import sys
import wave
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from tasks.providers.base import ProviderError, SpeechRequest, SpeechResult
from tasks.providers.espeak import EspeakSpeech

SENTENCE = "The quick brown fox jumps over the lazy dog."


def speak(text: str, voice: str = "en-us", language: str = "en", **options) -> SpeechResult:
    return EspeakSpeech(options).synthesize(SpeechRequest(text=text, voice=voice, language=language))


def read_wav(data: bytes) -> wave.Wave_read:
    return wave.open(io.BytesIO(data), "rb")


def duration(result: SpeechResult) -> float:
    with read_wav(result.wav) as audio:
        return audio.getnframes() / audio.getframerate()


def test_result_is_mono_16_bit_wav_of_plausible_length():
    result = speak(SENTENCE)
    with read_wav(result.wav) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, 22050)
    assert 1.5 < duration(result) < 5.0  # nine words at 175 words per minute
    assert result.usage.characters == len(SENTENCE)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (SENTENCE, ["The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog."]),
        (
            "I don't know, it's 1,234 or 3.14 state-of-the-art.",
            ["I", "don't", "know,", "it's", "1,234", "or", "3.14", "state-of-the-art."],
        ),
    ],
)
def test_word_texts_are_the_sentence_words_in_order(text, words):
    assert [word.text for word in speak(text).words] == words


def test_word_timings_are_ordered_and_inside_the_audio():
    result = speak(SENTENCE)
    end = duration(result)
    assert result.words[0].start == 0
    assert result.words[-1].end == pytest.approx(end)
    for word, following in zip(result.words, result.words[1:]):
        assert 0 <= word.start < word.end == following.start <= end


def test_non_ascii_words_map_to_exact_substrings():
    text = "café naïve 日本 👋 שלום"
    assert [word.text for word in speak(text).words] == ["café", "naïve", "日本", "👋", "שלום"]


def test_words_of_a_script_spoken_by_its_own_voice_map_to_exact_substrings():
    assert [word.text for word in speak("L'homme qu'il a vu est là-bas.", "fr", "fr").words] == [
        "L'homme", "qu'il", "a", "vu", "est", "là-bas.",
    ]


def test_markup_in_the_text_is_spoken_literally():
    text = "<speak>Hello</speak> [[h@l'oU]] world"
    result = speak(text)
    words = [word.text for word in result.words]
    assert duration(result) > duration(speak("Hello world"))
    assert " ".join(words) == text  # every character is kept, none was parsed as SSML or phonemes


def test_same_request_gives_identical_bytes():
    assert speak(SENTENCE).wav == speak(SENTENCE).wav


def test_output_does_not_depend_on_earlier_requests():
    first = speak(SENTENCE)
    speak("Something entirely different, to move the library's internal state along.", "en", "en", rate=300)
    assert speak(SENTENCE) == first


def test_concurrent_calls_give_the_same_bytes_as_sequential_calls():
    texts = [SENTENCE, "Hello world.", "café naïve", "Numbers like 1,234 take a while to say."] * 2
    sequential = [speak(text).wav for text in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda text: speak(text).wav, texts))
    assert concurrent == sequential


def test_language_is_used_when_the_voice_is_unknown():
    assert speak(SENTENCE, "no-such-voice", "en-us").wav == speak(SENTENCE, "en-us", "en").wav


def test_unknown_voice_and_language_raise_provider_error():
    with pytest.raises(ProviderError, match="no-such-voice"):
        speak(SENTENCE, "no-such-voice", "xx-nowhere")


def test_text_without_anything_to_say_raises_provider_error():
    with pytest.raises(ProviderError, match="no audio"):
        speak("...")


def test_faster_rate_gives_shorter_audio():
    assert duration(speak(SENTENCE, rate=350)) < duration(speak(SENTENCE, rate=120))


def test_rate_outside_espeak_range_is_rejected():
    with pytest.raises(ValidationError):
        EspeakSpeech({"rate": 500})


SPEAK_IN_A_PROCESS = """
import os, signal, sys
from tasks.providers.base import SpeechRequest
from tasks.providers.espeak import EspeakSpeech
EspeakSpeech().synthesize(SpeechRequest(text="Hello.", voice="en-us", language="en"))
if sys.argv[1] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_process_leaves_its_library_copy_and_the_next_process_removes_it(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    living = tmp_path / f"reelflow-espeak-{os.getpid()}-inuse"  # a running process's copy
    living.mkdir()

    killed = subprocess.run([sys.executable, "-c", SPEAK_IN_A_PROCESS, "kill"], env=env)
    assert killed.returncode == -9
    left = sorted(p.name for p in tmp_path.iterdir() if p != living)
    assert len(left) == 1 and left[0].startswith("reelflow-espeak-")

    subprocess.run([sys.executable, "-c", SPEAK_IN_A_PROCESS, "exit"], env=env, check=True)
    assert [p.name for p in tmp_path.iterdir()] == [living.name]
