"""The offline planner: deterministic outlines from a topic, scenes from a script."""

from __future__ import annotations

from tasks.providers.local_planner import LocalPlanner
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
