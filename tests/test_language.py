"""Language drives the voice and the planner: detection, a voice per language and provider, a
voice that cannot speak the language refused, and the offline outline in the topic's language."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from config.settings import load_settings
from tasks import speech
from tasks.graph import video_graph
from tasks.language import detect, language, languages
from tasks.preflight import VoiceMismatch, check_voice
from tasks.providers.base import SpeechRequest
from tasks.providers.elevenlabs import ElevenLabsSpeech
from tasks.providers.espeak import EspeakSpeech, voice_languages
from tasks.providers.local_planner import LocalPlanner
from tasks.providers.planning import planner_prompt
from tasks.storyboard import Storyboard, VideoRequest
from tests.fakes.elevenlabs import TTS_PATH, FakeElevenLabs

REELFLOW = str(Path(sys.executable).parent / "reelflow")
# The languages the issue names, with a short topic a person might type in each.
TOPICS = {
    "en": "How volcanoes work", "fr": "Pourquoi le ciel est bleu",
    "es": "Cómo funcionan los volcanes", "de": "Wie Vulkane funktionieren",
    "pt": "Como funcionam os vulcões", "it": "Come funzionano i vulcani",
    "el": "Πώς λειτουργούν τα ηφαίστεια", "ar": "كيف تعمل البراكين",
    "he": "איך פועלים הרי געש", "ru": "Почему небо голубое",
    "hi": "ज्वालामुखी कैसे काम करते हैं", "ja": "富士山はなぜ美しいのか",
    "zh": "火山是如何运作的", "ko": "화산은 어떻게 작동하나요", "th": "ภูเขาไฟทำงานอย่างไร",
}
OUTLINED = [code for code in TOPICS if code != "th"]


def board_for(code: str) -> Storyboard:
    """The offline planner's two-scene storyboard of the language's topic, language detected."""
    return LocalPlanner().plan(VideoRequest(topic=TOPICS[code], scenes=2)).storyboard


def speech_params(board: Storyboard, synthesizer) -> list[dict]:
    """The params of every speech node of `board` served by `synthesizer`."""
    settings = load_settings()
    return [speech.describe(step, board, settings, synthesizer, {})[0].params
            for step in video_graph(board) if step.kind == "tts"]


def seconds(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as audio:
        return audio.getnframes() / audio.getframerate()


@pytest.mark.parametrize("code", TOPICS)
def test_a_topic_is_detected_in_its_language(code):
    assert detect(TOPICS[code]) == code


def test_a_lone_name_in_latin_letters_is_taken_for_english():
    assert [detect(name) for name in ["Paris", "NASA", "Tsunami"]] == ["en", "en", "en"]


def test_the_language_given_overrides_detection_and_is_kept_in_the_storyboard():
    request = VideoRequest(topic=TOPICS["fr"], language="es")
    assert request.language == "es"
    assert LocalPlanner().plan(request).storyboard.language == "es"


@pytest.mark.parametrize("code", TOPICS)
def test_espeak_speaks_each_language_with_a_voice_of_that_language(code):
    board = board_for(code)
    assert board.language == code and board.voice is None
    for params in speech_params(board, EspeakSpeech()):
        assert params["voice"] == language(code).espeak
        assert code in voice_languages()[params["voice"]]  # eSpeak's own voice file says so


def test_every_language_of_the_table_has_an_espeak_voice_that_speaks_it():
    for code, spoken in languages().items():
        assert code in voice_languages().get(spoken.espeak, ()), code


def test_elevenlabs_is_sent_each_language_code(tls, monkeypatch):
    monkeypatch.setenv("ELEVENLABS_API_KEY", "key")
    with FakeElevenLabs(tls) as fake:
        synthesizer = ElevenLabsSpeech({"base_url": fake.url, "timeout_s": 5})
        for code in TOPICS:
            board = board_for(code)
            node, generate = speech.describe(next(s for s in video_graph(board) if s.kind == "tts"),
                                             board, load_settings(), synthesizer, {})
            generate(None)
            body = fake.server.calls("POST", TTS_PATH)[-1].json()
            assert body.get("language_code") == language(code).elevenlabs, code
            assert node.params["voice"] == ElevenLabsSpeech.DEFAULT_VOICE
    assert language("ja").elevenlabs == "ja" and language("th").elevenlabs is None


def test_a_greek_topic_is_spoken_in_greek_not_spelled_letter_by_letter():
    board = LocalPlanner().plan(VideoRequest(topic="Ολυμπιακοί αγώνες", scenes=1)).storyboard
    assert board.language == "el"
    line = board.scenes[0].lines[0].text
    assert "Ολυμπιακοί αγώνες" in line and not re.search("[A-Za-z]", line)
    [params] = speech_params(board, EspeakSpeech())
    assert params["voice"] == "el"
    spoken = EspeakSpeech().synthesize(SpeechRequest(**params))
    spelled = EspeakSpeech().synthesize(SpeechRequest(**{**params, "voice": "en-us"}))
    # An English voice names each Greek letter ("omicron, lambda, ..."): several times longer.
    assert seconds(spoken.wav) * 3 < seconds(spelled.wav)
    assert seconds(spoken.wav) < len(line) * 0.1


def test_a_character_keeps_its_espeak_variant_in_another_language():
    espeak = EspeakSpeech()
    assert espeak.speaking_voice("en-us+f2", "fr") == "fr+f2"
    assert espeak.speaking_voice("en-us+f2", "en") == "en-us+f2"
    assert espeak.speaking_voice(None, "pt-br") == "pt-br"


def test_a_voice_that_cannot_speak_the_language_is_refused_naming_both():
    with pytest.raises(VoiceMismatch, match=r"'en-us' does not speak Japanese \(ja\)"):
        check_voice("en-us", "ja", load_settings())
    assert check_voice("fr-be", "fr", load_settings()) == []


def test_a_voice_no_provider_knows_is_a_warning():
    [warning] = check_voice("21m00Tcm4TlvDq8ikWAM", "fr", load_settings("cloud"))
    assert "cannot tell" in warning and "French (fr)" in warning


def test_a_language_whose_voice_cannot_read_the_text_is_refused():
    with pytest.raises(ValueError, match="English \\(en\\) voice cannot read the topic's Greek"):
        VideoRequest(topic="Ολυμπιακοί αγώνες", language="en")
    with pytest.raises(ValueError, match="'xx' is not a language"):
        VideoRequest(topic="Volcanoes", language="xx")


ENGLISH = {"the", "is", "about", "and", "of", "how", "why", "what", "here", "that", "this",
           "thanks", "watching", "let's", "find", "out", "ever", "wondered", "in", "a", "to"}


def test_the_french_outline_has_no_english_words():
    board = LocalPlanner().plan(VideoRequest(topic="le pain", scenes=10)).storyboard
    words = {word.lower() for scene in board.scenes for line in scene.lines
             for word in re.findall(r"[\w']+", line.text)}
    assert board.language == "fr" and not words & ENGLISH


@pytest.mark.parametrize("code", OUTLINED)
def test_each_outlined_language_quotes_the_topic_in_its_own_sentences(code):
    board = board_for(code)
    for scene in board.scenes:
        text = scene.lines[0].text
        assert TOPICS[code] in text and text != TOPICS[code]
        if code not in ("en", "fr", "es", "de", "pt", "it"):  # the rest use other letters
            assert not re.search("[A-Za-z]", text), text


def test_a_language_without_an_outline_narrates_the_topic_itself():
    board = board_for("th")
    assert [scene.lines[0].text for scene in board.scenes] == [TOPICS["th"]] * 2


def test_unspaced_scripts_are_timed_by_their_characters():
    short, long = (LocalPlanner().plan(VideoRequest(topic=topic, scenes=1)).storyboard
                   for topic in ("火山", "火山是如何运作的火山是如何运作的火山是如何运作的"))
    assert long.scenes[0].duration > short.scenes[0].duration + 3


def test_cloud_planners_are_told_the_language_by_name_and_code():
    prompt = planner_prompt(VideoRequest(topic=TOPICS["ja"]))
    assert "Japanese (language code 'ja')" in prompt and "title and every line" in prompt


@pytest.mark.parametrize("command", ["make", "plan"])
def test_cli_refuses_a_voice_that_cannot_speak_the_language(command, cli_env):
    result = subprocess.run([REELFLOW, command, "富士山", "--voice", "en-us", "--language", "ja"],
                            capture_output=True, text=True, env=cli_env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "'en-us'" in result.stderr and "Japanese (ja)" in result.stderr
