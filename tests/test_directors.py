"""Directors' looks (config/directors): a file drop each; a look shapes the plan (camera moves,
shot lengths), every picture prompt and the cuts, and is part of the keys of what it shapes."""

from __future__ import annotations

import shutil

import pytest

from config import bible
from config.bible import BibleError, director_look, load_profiles
from config.settings import Settings
from tasks import compose, images
from tasks.graph import video_graph
from tasks.plan import plan_node
from tasks.providers.gemini import GeminiImage
from tasks.providers.local_image import LocalImage
from tasks.providers.local_planner import LocalPlanner
from tasks.storyboard import DirectorLook, Storyboard, VideoRequest

SCRIPT = ("Bees dance. They point the way to food.\n\nThe angle is the sun.\n\n"
          "A long waggle means far away, and the hive follows the dancer out.")


def planned(director: str | None) -> Storyboard:
    request = VideoRequest(script=SCRIPT, director=director_look(director) if director else None)
    return LocalPlanner().plan(request).storyboard


class _Made(dict):
    """Any upstream node's outputs, as stored: describing a node reads their digests only."""

    digest = "0" * 64

    def __missing__(self, name):
        return self


def node_of(board: Storyboard, node_id: str, describe, provider=None):
    step = next(step for step in video_graph(board) if step.id == node_id)
    return describe(step, board, Settings(), provider, _Made())[0]


def test_six_or_more_looks_ship_each_named_by_what_it_looks_like():
    looks = load_profiles(DirectorLook)
    assert len(looks) >= 6
    for look in looks.values():
        assert "Evokes" in look.description  # the director it evokes, in its description
        assert look.name.lower() not in {"wes anderson", "christopher nolan"}


def test_two_looks_on_the_same_request_give_different_prompts_shot_lengths_and_cuts():
    plain, pastel, epic = planned(None), planned("symmetric-pastel"), planned("cold-epic")
    for board, look in ((pastel, "symmetric-pastel"), (epic, "cold-epic")):
        shortest = director_look(look).shot_seconds[0]
        assert all(scene.duration >= shortest for scene in board.scenes)
        assert {scene.camera for scene in board.scenes} <= set(director_look(look).camera)
        assert [s.narration for s in board.scenes] == [s.narration for s in plain.scenes]
    assert [s.duration for s in pastel.scenes] != [s.duration for s in epic.scenes]

    prompts = {name: node_of(board, "s001-image", images.describe, GeminiImage()).params["prompt"]
               for name, board in (("plain", plain), ("pastel", pastel), ("epic", epic))}
    assert director_look("symmetric-pastel").prompt in prompts["pastel"]
    assert director_look("cold-epic").prompt in prompts["epic"]
    assert len(set(prompts.values())) == 3
    keys = {node_of(board, "s001-image", images.describe, LocalImage()).key
            for board in (plain, pastel, epic)}
    assert len(keys) == 3
    segment = node_of(epic, compose.segment_id(epic.ordered_scenes()[0]),
                      compose.describe_segment)
    assert segment.params["transition"] == "cut"
    assert "transition" not in node_of(plain, segment.id, compose.describe_segment).params


def test_a_request_without_a_look_keeps_the_key_of_its_stored_plan():
    request = VideoRequest(topic="volcanoes")
    node, _ = plan_node(request, LocalPlanner())
    assert "director" not in node.params["request"]
    looked = request.model_copy(update={"director": director_look("noir")})
    assert plan_node(looked, LocalPlanner())[0].key != node.key


def test_adding_a_look_is_a_file_drop(tmp_path, monkeypatch):
    folder = tmp_path / "directors"
    shutil.copytree(bible.SHIPPED[DirectorLook], folder)
    monkeypatch.setitem(bible.SHIPPED, DirectorLook, folder)
    (folder / "tilt-shift.yaml").write_text(
        "id: tilt-shift\nname: Tilt-shift miniature\ndescription: Real places as toy models. "
        "Evokes tilt-shift photography.\npalette: ['#88C0D0', '#EBCB8B']\n"
        "lenses: tilted lens, narrow band of focus\nframing: high above, looking down\n"
        "camera: [pan_right]\nshot_seconds: [2, 3]\ntransition: dissolve\n"
        "prompt: tilt-shift miniature photograph, toy-like\n", encoding="utf-8")
    board = LocalPlanner().plan(VideoRequest(
        script=SCRIPT, director=director_look("tilt-shift"))).storyboard
    assert {scene.camera.value for scene in board.scenes} == {"pan_right"}

    for camera, shots, problem in (("dolly", "[2, 5]", r"camera\.0: "),
                                   ("static", "[5, 2]", "shot_seconds: give the shortest")):
        (folder / "broken.yaml").write_text(
            "id: broken\nname: Broken\ndescription: x\npalette: ['#000000', '#ffffff']\n"
            f"lenses: x\nframing: x\ncamera: [{camera}]\nshot_seconds: {shots}\nprompt: x\n",
            encoding="utf-8")
        with pytest.raises(BibleError, match=rf"broken\.yaml: {problem}"):
            load_profiles(DirectorLook)
