"""A draft that still breaks the reply schema after its repair is made to fit, the same way
every time, and says what was changed."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tasks.providers.draft import fit_draft
from tasks.providers.planning import to_storyboard
from tasks.storyboard import MAX_LINE_CHARS, VideoRequest


def scene(narration: str = "", lines: list | None = None, duration: float = 6.0, **fields) -> dict:
    return {"narration": narration, "lines": lines or [], "visual_prompt": "the sea",
            "camera": "static", "duration": duration, **fields}


def reply(*scenes: dict, title: str = "Tides") -> str:
    return json.dumps({"title": title, "scenes": list(scenes)})


def request(scenes: int) -> VideoRequest:
    return VideoRequest(topic="tides", scenes=scenes)


def test_too_many_scenes_keep_the_first_and_the_last():
    draft, adjustments = fit_draft(reply(*(scene(f"Scene {i}.") for i in range(1, 9))), request(6))

    assert [s.narration for s in draft.scenes] == [f"Scene {i}." for i in (1, 2, 3, 4, 5, 8)]
    assert adjustments == ["scenes: the model wrote 8 of the 6 scenes asked; kept scenes 1-5 "
                           "and 8"]


def test_too_few_scenes_split_the_one_with_most_sentences_first():
    long = scene("One. Two. Three. Four.", duration=8.0)
    draft, adjustments = fit_draft(reply(scene("Short."), long), request(3))

    assert [(s.narration, s.duration) for s in draft.scenes] == [
        ("Short.", 6.0), ("One. Two.", 4.0), ("Three. Four.", 4.0)]
    assert adjustments == ["scenes: the model wrote 2 of the 3 scenes asked; split the longest "
                           "in two until there were 3"]


def test_a_dialogue_is_split_between_its_lines_and_keeps_its_speakers():
    lines = [{"speaker": "mira", "text": "Boxes are great."},
             {"speaker": "otto", "text": "Let's open one. Carefully."}]
    draft, _ = fit_draft(reply(scene(lines=lines, location="workshop")), request(2))

    first, second = draft.scenes
    assert [(line.speaker, line.text) for line in first.lines] == [
        ("mira", "Boxes are great."), ("otto", "Let's open one.")]
    assert [(line.speaker, line.text) for line in second.lines] == [("otto", "Carefully.")]
    assert first.location == second.location == "workshop"


def test_one_sentence_splits_between_words_and_one_word_is_repeated():
    draft, _ = fit_draft(reply(scene("Waves come in.")), request(2))
    assert [s.narration for s in draft.scenes] == ["Waves come", "in."]

    draft, _ = fit_draft(reply(scene("Waves.")), request(3))
    assert [s.narration for s in draft.scenes] == ["Waves."] * 3


def test_fields_beyond_a_limit_are_cut_or_clamped_and_each_change_is_named():
    sentence = "The tide turns twice a day. "
    narration = sentence * 60  # 1680 characters
    many_lines = [{"speaker": "mira", "text": "Hi."}] * 60
    draft, adjustments = fit_draft(
        reply(scene(narration, duration=300), scene(lines=many_lines, duration=0.2),
              title="T" * 250), request(2))

    first, second = draft.scenes
    assert len(first.narration) <= MAX_LINE_CHARS and first.narration.endswith("a day.")
    assert (first.duration, second.duration, len(second.lines)) == (120, 1, 49)
    assert draft.title == "T" * 200
    assert adjustments == ["title: cut to 200 characters",
                           "scene 1 narration: cut to 1000 characters",
                           "scene 1 duration: 300 clamped to 120",
                           "scene 2 lines: 60 cut to the first 49",
                           "scene 2 duration: 0.2 clamped to 1"]


def test_the_same_reply_is_fitted_the_same_way_every_time():
    text = reply(*(scene("A. B. C.", duration=5.5 + i) for i in range(3)))
    assert fit_draft(text, request(7)) == fit_draft(text, request(7))


@pytest.mark.parametrize("text", ["not json", '{"title": "no scenes"}', reply()],
                         ids=["not-json", "no-scenes", "empty-scenes"])
def test_a_reply_that_is_no_draft_at_all_is_not_fitted(text):
    with pytest.raises((ValueError, ValidationError)):
        fit_draft(text, request(3))


def test_an_overlong_on_screen_text_is_cut_at_its_last_word_and_named_and_kept_when_split():
    shown = "Twice a day the whole ocean leans toward the moon and then away again"  # 70
    draft, adjustments = fit_draft(reply(scene("One. Two.", on_screen_text=shown)), request(2))

    assert [s.on_screen_text for s in draft.scenes] == ["Twice a day the whole ocean leans "
                                                        "toward the moon and then"] * 2
    assert adjustments[0] == "scene 1 on_screen_text: cut to 60 characters"


def test_a_draft_without_on_screen_text_is_a_draft_and_shows_no_words():
    draft, adjustments = fit_draft(reply(scene("Waves.")), request(1))

    assert draft.scenes[0].on_screen_text == "" and adjustments == []
    board = to_storyboard(draft, request(1))
    assert board.scenes[0].on_screen_text is None
