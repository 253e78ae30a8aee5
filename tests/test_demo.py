"""`make demo` narrates the script shipped for it: its sentences as written, 5-7 scenes, each with
its bold words on screen, 30-45 s in eSpeak's voice at its default rate."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

from config.settings import Settings
from tasks.providers.base import SpeechRequest
from tasks.providers.espeak import EspeakSpeech
from tasks.providers.local_planner import LocalPlanner
from tasks.script import sentences
from tasks.storyboard import VideoRequest

ROOT = Path(__file__).resolve().parent.parent
DEMO = "deployments/scripts/honeybee-dance.md"


def demo_request() -> VideoRequest:
    """The request `reelflow make --script DEMO` sends: the script, every other option left."""
    return VideoRequest(script=(ROOT / DEMO).read_text(encoding="utf-8"))


def test_the_makefiles_demo_renders_the_shipped_script():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    assert recipe.strip().endswith(f"reelflow make --script {DEMO}")


def test_the_demo_narrates_the_scripts_sentences_as_written_with_its_bold_words_on_screen():
    paragraphs = (ROOT / DEMO).read_text(encoding="utf-8").strip().split("\n\n")
    heading, body = paragraphs[0], [" ".join(p.split()) for p in paragraphs[1:]]
    board = LocalPlanner().plan(demo_request()).storyboard
    scenes = board.ordered_scenes()

    assert board.title == heading.removeprefix("# ")
    assert 5 <= len(scenes) <= 7
    said = [sentence for scene in scenes for line in scene.lines for sentence in sentences(line.text)]
    assert said == [s for paragraph in body for s in sentences(paragraph.replace("**", ""))]
    bold = [re.search(r"\*\*(.+?)\*\*", paragraph)[1] for paragraph in body]
    assert [scene.on_screen_text for scene in scenes] == [b[:1].upper() + b[1:] for b in bold]


def test_the_demo_lasts_30_to_45_seconds_in_espeaks_voice():
    board = LocalPlanner().plan(demo_request()).storyboard
    voice = EspeakSpeech()
    speech = 0.0
    for scene in board.scenes:
        for line in scene.lines:
            result = voice.synthesize(SpeechRequest(
                text=line.text, voice=voice.default_voice(board.language), language=board.language))
            with wave.open(io.BytesIO(result.wav)) as spoken:
                speech += spoken.getnframes() / spoken.getframerate()
    seconds = speech + Settings().scene_pad_seconds * len(board.scenes)

    assert 30 <= seconds <= 45, seconds
