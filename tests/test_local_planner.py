"""The offline planner: deterministic outlines from a topic, scenes from a script."""

from __future__ import annotations

import unicodedata

import pytest

from config.catalog import styles
from tasks.providers.local_planner import PLACEHOLDER, LocalPlanner
from tasks.reading import read_line
from tasks.storyboard import VideoRequest


def test_a_topic_gives_the_same_outline_every_time():
    request = VideoRequest(topic="volcanoes", scenes=5)
    first, second = (LocalPlanner().plan(request).storyboard for _ in range(2))
    assert first == second
    assert len(first.scenes) == 5
    assert "volcanoes" in first.scenes[0].narration  # the hook names the topic
    assert "Thanks for watching" in first.scenes[-1].narration  # and it closes


def test_scene_ids_are_unique_and_targets_cover_the_words():
    board = LocalPlanner().plan(VideoRequest(topic="tides", scenes=8)).storyboard
    assert len({scene.id for scene in board.scenes}) == 8
    for scene in board.scenes:
        assert scene.duration >= len(scene.narration.split()) / 2.9


def test_a_script_with_paragraphs_gives_one_scene_per_paragraph():
    script = "First idea here.\n\nSecond idea, longer.\n\nThird."
    board = LocalPlanner().plan(VideoRequest(script=script, scenes=6)).storyboard
    assert [s.narration for s in board.scenes] == ["First idea here.", "Second idea, longer.", "Third."]


def test_a_single_paragraph_is_split_by_sentences_into_the_requested_scenes():
    script = "One. Two! Three? Four. Five."
    board = LocalPlanner().plan(VideoRequest(script=script, scenes=2)).storyboard
    assert [s.narration for s in board.scenes] == ["One. Two! Three?", "Four. Five."]


def test_a_scripts_title_names_the_video_unless_a_topic_is_given():
    script = "# Tides\n\nThe moon pulls. The sea follows.\n\n## Why\n\nGravity."
    board = LocalPlanner().plan(VideoRequest(script=script, scenes=2)).storyboard
    assert board.title == "Tides"
    assert [s.narration for s in board.scenes] == ["The moon pulls. The sea follows.", "Gravity."]
    named = LocalPlanner().plan(VideoRequest(topic="the sea", script=script)).storyboard
    assert named.title == "the sea"


def test_a_paragraph_without_spaces_is_split_at_its_full_stops():
    board = LocalPlanner().plan(VideoRequest(script="月が引く。海が従う。", scenes=2)).storyboard
    assert [s.narration for s in board.scenes] == ["月が引く。", "海が従う。"]


def on_screen(script: str) -> list[str | None]:
    board = LocalPlanner().plan(VideoRequest(script=script, scenes=1)).storyboard
    return [scene.on_screen_text for scene in board.scenes]


def test_each_scene_shows_the_key_phrase_of_its_narration_within_a_clause():
    assert on_screen("To make one kilogram of honey, bees fly about 150,000 kilometres.\n\n"
                     "In 1973, Karl von Frisch won a Nobel Prize for decoding the dance.\n\n"
                     "Octopuses have three hearts and blue blood.") == [
        "Bees fly about 150,000 kilometres",  # a number is the point
        "Nobel Prize for decoding",  # names count; the phrase ends on a word of content
        "Octopuses have three hearts"]


@pytest.mark.parametrize("narration, language", [
    ("Η μέλισσα επισκέπτεται εκατό λουλούδια σε κάθε πτήση.", "el"),
    ("Пчёлы танцуют, чтобы показать дорогу к цветам.", "ru"),
    ("Die Bienen tanzen, um den Weg zu den Blumen zu zeigen.", "de"),
    ("النحل يرقص ليخبر رفاقه بمكان الزهور.", "ar"),
    ("蜜蜂通过跳舞告诉同伴花在哪里。", "zh"),
    ("ミツバチはダンスで花の場所を仲間に伝えます。", "ja"),
    ("ผึ้งเต้นรำเพื่อบอกทางไปยังดอกไม้", "th"),
])
def test_the_key_phrase_is_a_few_words_of_the_narration_in_any_language(narration, language):
    board = LocalPlanner().plan(VideoRequest(script=narration, language=language)).storyboard
    shown = board.scenes[0].on_screen_text
    words = read_line(shown, language).words

    assert 1 <= len(words) <= 6 and len(shown) <= 60
    assert shown[1:] in narration and shown[0].lower() in narration.lower()
    assert not unicodedata.category(shown[-1]).startswith("P")  # no comma or full stop
    assert LocalPlanner().plan(VideoRequest(script=narration, language=language)).storyboard == board


def test_a_line_with_nothing_to_show_leaves_the_picture_without_words():
    assert on_screen("🐝 🌼!\n\nBees.") == [None, "Bees"]


def test_an_outline_of_a_topic_says_once_that_it_is_a_placeholder_and_how_to_plug_in_a_model():
    result = LocalPlanner().plan(VideoRequest(topic="how honeybees make honey", scenes=4))

    assert result.adjustments == [PLACEHOLDER]
    assert "--profile ollama" in PLACEHOLDER and "--profile cloud" in PLACEHOLDER
    assert {s.on_screen_text for s in result.storyboard.scenes} == {"Honeybees make honey"}
    scripted = LocalPlanner().plan(VideoRequest(script="Bees dance.", topic="bees"))
    assert scripted.adjustments == []


def test_a_paragraphs_bold_words_are_shown_where_they_fit_on_screen():
    too_long = "a " * 40  # 79 characters: the key phrase is shown instead
    assert on_screen(f"Bees **dance** at home.\n\nThe honeybee colony **{too_long.strip()}** votes.") == [
        "Dance", "Honeybee colony"]


def test_each_style_moves_the_camera_its_own_way():
    moves = {}
    for style, look in styles().items():
        board = LocalPlanner().plan(VideoRequest(topic="tides", scenes=6, style=style)).storyboard
        moves[style] = [scene.camera.value for scene in board.scenes]
        assert moves[style] == [look["motions"][i % len(look["motions"])] for i in range(6)]
    assert len(set(map(tuple, moves.values()))) == len(moves)
