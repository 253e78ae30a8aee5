"""Scripts read as written, and what the voice is given to say: markdown's markup is neither
said nor shown, emoji are shown but not said, words of scripts written without spaces are each
timed, and Japanese kanji reach eSpeak as kana. Speech is real eSpeak, through the speech node."""

from __future__ import annotations

import io
import json
import re
import wave

import pytest
from pydantic import ValidationError

from config.settings import Settings
from tasks.graph import Step
from tasks.providers.base import WordTiming
from tasks.providers.espeak import EspeakSpeech
from tasks.providers.local_planner import LocalPlanner
from tasks.providers.planning import planner_prompt
from tasks.reading import read_line, written_timings
from tasks.script import read_script, script_scenes, sentences
from tasks.speech import describe
from tasks.storyboard import Character, Line, Scene, Storyboard, VideoRequest
from tasks.subtitles import SceneWords, karaoke_ass
from tasks.writing import join_words

KARAOKE_TAG = re.compile(r"\{\\k\d+\}")

MARKDOWN = """# The Quiet *Engine*

It **hums** at night 🌙. Read [the notes](https://example.com/notes) 👋

## How it works
- First, it _spins_.
- Then it rests, `idle`.

```
print("never said")
```
"""


def speech_node(text: str, language: str = "en", voice: str = "en-us", tmp_path=None):
    """The speech node of a one-line storyboard, made by real eSpeak: its params, its audio's
    length in seconds and its words."""
    board = Storyboard(title="t", voice=voice, language=language, scenes=[
        Scene(id="s001", order=0, lines=[Line(text=text)], visual_prompt="x", duration=3)])
    node, generate = describe(Step("s001-l1-tts", "tts", "s001", "1"), board,
                              Settings(store=str(tmp_path / "store")), EspeakSpeech(), {})
    outputs, _ = generate(tmp_path)
    with wave.open(io.BytesIO(outputs["audio"][0])) as audio:
        seconds = audio.getnframes() / audio.getframerate()
    words = [WordTiming(**word) for word in json.loads(outputs["words"][0])]
    return node.params, seconds, words


def karaoke_events(words: list[WordTiming]) -> list[str]:
    """The karaoke syllables of the captions made from `words`."""
    ass = karaoke_ass([SceneWords(0.0, 10.0, words)], width=180, height=320)
    return [tag for line in ass.splitlines() if line.startswith("Dialogue:")
            for tag in KARAOKE_TAG.findall(line)]


def test_a_markdown_script_gives_a_plain_title_and_scenes_without_markup():
    board = LocalPlanner().plan(VideoRequest(script=MARKDOWN, scenes=6)).storyboard
    assert board.title == "The Quiet Engine"
    assert [scene.narration for scene in board.ordered_scenes()] == [
        "It hums at night 🌙. Read the notes 👋",
        "First, it spins. Then it rests, idle.",
    ]


def test_a_markdown_line_is_said_without_emoji_and_shown_with_them(tmp_path):
    line = LocalPlanner().plan(VideoRequest(script=MARKDOWN)).storyboard.scenes[0].lines[0]
    params, _, words = speech_node(line.text, tmp_path=tmp_path)
    assert params["text"] == "It hums at night. Read the notes"
    assert params["written"] == line.text
    assert [word.text for word in words] == ["It", "hums", "at", "night 🌙.", "Read", "the",
                                             "notes 👋"]
    ass = karaoke_ass([SceneWords(0.0, 10.0, words)], width=180, height=320)
    assert "🌙" in ass and "👋" in ass and "#" not in ass and "*" not in ass


def test_the_cloud_planners_are_given_the_title_and_the_script_without_markup():
    prompt = planner_prompt(VideoRequest(script=MARKDOWN))
    assert "The video's title: The Quiet Engine\n" in prompt
    assert "It hums at night 🌙. Read the notes 👋\n\nFirst, it spins.\nThen it rests, idle." \
        in prompt
    assert not any(mark in prompt for mark in ("#", "**", "](", "never said"))


@pytest.mark.parametrize("script", [
    "5 * 3 is 15, and 2*3*4 is 24.",
    "snake_case, a_b_c and _private keep their underscores.",
    "\"Quotes\", 'single ones' and don't stay; so does #hashtag and C#.",
    "See https://example.com/a_b_c/*x* as written.",
    "I'm - 5 degrees — cold > hot, 3 > 2.",
])
def test_plain_text_keeps_every_character(script):
    assert script_scenes(script, []) == [[Line(text=script)]]


@pytest.mark.parametrize(("script", "title", "scenes"), [
    ("---\ntitle: \"My *Film*\"\nauthor: me\n---\nHello there.\n\nSecond.", "My Film",
     [["Hello there."], ["Second."]]),
    ("Chapter One\n\nIt was a dark night.\n\nThe end.", "Chapter One",
     [["It was a dark night."], ["The end."]]),
    ("First idea here.\n\nSecond idea.", None, [["First idea here."], ["Second idea."]]),
    ("Title\n=====\nText one.\nSub\n---\nText two.\n\n***\n\nThree.", "Title",
     [["Text one."], ["Text two."], ["Three."]]),
    ("Intro words.\n# Part two\nMore words.", None, [["Intro words."], ["More words."]]),
    ("> 1. A **quoted** item\n> 2) ~~struck~~ text\n\n![a picture](p.png) \\*not emphasis\\*\n"
     "[ref]: https://example.com", None, [["A quoted item", "struck text"], ["*not emphasis*"]]),
])
def test_titles_headings_and_markup(script, title, scenes):
    read = read_script(script)
    assert (read.title, read.scenes) == (title, scenes)


def test_with_a_cast_a_first_line_naming_a_speaker_is_dialogue_and_bold_names_still_speak():
    cast = [Character(id="mira", name="Mira", appearance="a cat")]
    script = "**Mira:** Boxes!\n\nMira: *Indeed.*"
    assert read_script(script, cast).title is None
    assert script_scenes(script, cast) == [[Line(speaker="mira", text="Boxes!")],
                                           [Line(speaker="mira", text="Indeed.")]]


def test_a_script_with_nothing_to_say_is_refused():
    with pytest.raises(ValidationError, match="script: nothing to narrate"):
        VideoRequest(script="# Only a title\n\n```\ncode\n```")


def test_sentences_of_scripts_without_spaces_end_at_their_full_stops():
    assert sentences("今日は晴れ。明日は雨！「はい。」と言った。 Done. Next") == [
        "今日は晴れ。", "明日は雨！", "「はい。」と言った。", "Done.", "Next"]


@pytest.mark.parametrize(("line", "language", "voice"), [
    ("東京タワーに行きます", "ja", "ja"),
    ("我们今天去北京看升旗", "zh", "cmn"),
    ("ผมไปตลาดนะ", "th", "th"),
])
def test_a_line_without_spaces_is_timed_word_by_word(line, language, voice, tmp_path):
    assert len(line) == 10
    params, _, words = speech_node(line, language, voice, tmp_path)
    assert len(karaoke_events(words)) >= 3
    assert join_words(word.text for word in words) == line
    assert all(b.start >= a.start for a, b in zip(words, words[1:]))


def test_kanji_are_said_as_kana_and_shown_as_written(tmp_path):
    params, kanji_seconds, words = speech_node("富士山はなぜ美しいのか", "ja", "ja", tmp_path)
    assert params["text"] == "ふじさん はなぜ うつくしい のか"
    assert [word.text for word in words] == ["富士山", "はなぜ", "美しい", "のか"]
    _, kana_seconds, _ = speech_node("ふじさんはなぜうつくしいのか", "ja", "ja", tmp_path)
    assert kanji_seconds <= 1.5 * kana_seconds


def test_han_characters_alone_are_read_by_the_storyboards_language():
    assert read_line("日本語", "ja", reads_kanji=False).text == "にほんご"
    assert read_line("日本語", "zh").text == "日本 語"
    assert read_line("日本語", "ja").text == "日本語"  # a voice that reads kanji gets them


def test_a_line_of_emoji_alone_is_shown_over_quiet(tmp_path):
    params, seconds, words = speech_node("🎉 🎉", tmp_path=tmp_path)
    assert params["text"] == ""
    assert seconds == 1.0 and words == [WordTiming(text="🎉 🎉", start=0.0, end=1.0)]


def test_timings_map_to_written_words_by_position_not_by_count():
    reading = read_line("👋 Hi, big world ★ again.", "en")
    assert reading.text == "Hi, big world again."
    # The provider timed "big world" as one word: both share it by their length.
    said = [WordTiming(text="Hi,", start=0.0, end=0.4), WordTiming(text="big world", start=0.4, end=1.2),
            WordTiming(text="again.", start=1.2, end=2.0)]
    timed = [(word.text, round(word.start, 3), round(word.end, 3))
             for word in written_timings(reading, said)]
    assert timed == [("👋 Hi,", 0.0, 0.4), ("big", 0.4, 0.7), ("world ★", 0.7, 1.2),
                     ("again.", 1.2, 2.0)]


def test_a_scenes_first_bold_words_are_its_on_screen_text_and_a_bold_speaker_is_not():
    read = read_script("# Bees\n\nThey **dance** to *say* **where**.\n\nNo bold here.\n\n"
                       "Foragers are __sisters__.")
    assert read.shown == ["dance", None, "sisters"]
    cast = [Character(id="mira", name="Mira", appearance="a cat")]
    assert read_script("**Mira:** Boxes **everywhere**!\n\n**Mira:** Hm.", cast).shown == [
        "everywhere", None]
