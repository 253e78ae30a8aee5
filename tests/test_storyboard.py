"""The storyboard contract refuses what cannot be rendered, naming the field."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tasks.storyboard import Aspect, Storyboard, VideoRequest


def _board(**changes) -> dict:
    board = {
        "title": "Bees",
        "scenes": [
            {"id": "s001", "order": 0, "lines": [{"text": "Bees dance."}],
             "visual_prompt": "a bee", "duration": 3},
            {"id": "s002", "order": 1, "lines": [{"speaker": "ada", "text": "I fly."}],
             "cast": ["ada"], "visual_prompt": "a hive", "duration": 3},
        ],
        "characters": [{"id": "ada", "name": "Ada", "voices": {"espeak": "en-gb-x-rp"}}],
    }
    board.update(changes)
    return board


def _error_location(model, data) -> tuple:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return caught.value.errors()[0]["loc"]


def test_a_narrator_and_named_speakers_are_representable():
    board = Storyboard.model_validate(_board())
    assert board.character("ada").voices == {"espeak": "en-gb-x-rp"}
    assert [line.speaker for scene in board.scenes for line in scene.lines] == ["narrator", "ada"]


@pytest.mark.parametrize("scenes, field", [
    ([], ("scenes",)),
    ([{"id": "s1", "order": 0, "lines": [{"text": "x"}], "visual_prompt": "x", "duration": -1}],
     ("scenes", 0, "duration")),
    ([{"id": "../etc", "order": 0, "lines": [{"text": "x"}], "visual_prompt": "x", "duration": 1}],
     ("scenes", 0, "id")),
    ([{"id": "a/b", "order": 0, "lines": [{"text": "x"}], "visual_prompt": "x", "duration": 1}],
     ("scenes", 0, "id")),
])
def test_bad_scenes_are_refused_naming_the_field(scenes, field):
    assert _error_location(Storyboard, _board(scenes=scenes)) == field


def test_five_hundred_scenes_are_refused():
    scene = {"lines": [{"text": "x"}], "visual_prompt": "x", "duration": 1}
    scenes = [{**scene, "id": f"s{i}", "order": i} for i in range(500)]
    assert _error_location(Storyboard, _board(scenes=scenes)) == ("scenes",)


def test_duplicate_scene_ids_are_refused():
    board = _board()
    board["scenes"][1]["id"] = "s001"
    with pytest.raises(ValidationError, match="duplicate id 's001'"):
        Storyboard.model_validate(board)


def test_an_unknown_speaker_or_cast_member_is_refused():
    with pytest.raises(ValidationError, match="cast 'ada' is not a character"):
        Storyboard.model_validate(_board(characters=[]))
    board = _board()
    board["scenes"][1]["cast"] = []
    with pytest.raises(ValidationError, match="speaker 'ada' is neither"):
        Storyboard.model_validate(board)


def test_an_unknown_location_and_a_shared_id_are_refused():
    board = _board()
    board["scenes"][0]["location"] = "hive"
    with pytest.raises(ValidationError, match="location 'hive' is not a location"):
        Storyboard.model_validate(board)
    board["locations"] = [{"id": "ada", "description": "a meadow"}]
    with pytest.raises(ValidationError, match="duplicate id 'ada'"):
        Storyboard.model_validate(board)


def test_control_characters_are_refused_and_whitespace_is_folded():
    assert _error_location(VideoRequest, {"topic": "bees\x00"}) == ("topic",)
    assert VideoRequest(topic="  bees \n and\thoney ").topic == "bees and honey"


@pytest.mark.parametrize("topic", ["", "   ", "x" * 10_000])
def test_empty_or_oversized_topics_are_refused(topic):
    assert _error_location(VideoRequest, {"topic": topic}) == ("topic",)


def test_subtitle_and_filter_syntax_is_kept_as_plain_text():
    text = r"{\pos(0,0)} [0:v]scale=2:2; 'quoted', 100%"
    board = Storyboard.model_validate(_board(title=text))
    assert board.title == text


def test_aspect_sizes_are_even_and_match_the_shape():
    assert Aspect.portrait.size(1080) == (1080, 1920)
    assert Aspect.landscape.size(1080) == (1920, 1080)
    assert Aspect.square.size(320) == (320, 320)
    assert Aspect.portrait.size(320) == (320, 568)


def test_the_json_schema_describes_scenes():
    schema = Storyboard.model_json_schema()
    assert "scenes" in schema["properties"]
    json.dumps(schema)
