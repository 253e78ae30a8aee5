"""A scene's on-screen text: a user edits it like any field, and it is part of the keys of the
keyframes that draw it, and of nothing else."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.settings import Settings
from flows.editing import EditScene, apply
from tasks import images
from tasks.graph import run_step, video_graph
from tasks.providers.gemini import GeminiImage
from tasks.providers.local_image import LocalImage
from tasks.providers.local_planner import LocalPlanner
from tasks.storyboard import Scene, Storyboard, VideoRequest
from tests.composing import segments_reading

SCRIPT = "Bees dance to say where flowers are.\n\nA hive makes about 25 kilograms of honey a year."


def storyboard() -> Storyboard:
    return LocalPlanner().plan(VideoRequest(script=SCRIPT)).storyboard


def with_text(board: Storyboard, index: int, text: str | None) -> Storyboard:
    scenes = list(board.ordered_scenes())
    scenes[index] = scenes[index].model_copy(update={"on_screen_text": text})
    return board.model_copy(update={"scenes": scenes})


def render_in_process(board: Storyboard, settings: Settings) -> dict[str, str]:
    """Every node of `board`, in graph order, in this process: each node's status by id."""
    outcomes = {}
    for step in video_graph(board):
        outcomes[step.id] = run_step(step, {needed: outcomes[needed] for needed in step.needs},
                                     board, settings)
    return {node_id: outcome.status for node_id, outcome in outcomes.items()}


def test_an_edit_of_one_scenes_text_redraws_that_scenes_keyframe_clip_and_the_video_alone(
        tmp_path):
    settings = Settings(store=str(tmp_path / "store"), image=["local"], short_side=64, fps=6)
    board = storyboard()
    render_in_process(board, settings)

    again = render_in_process(with_text(board, 1, "25 kg a year"), settings)

    assert {node for node, status in again.items() if status == "generated"} == {
        "s002-image", "s002-clip", *segments_reading(board, "s002"), "compose"}
    assert set(render_in_process(with_text(board, 1, "25 kg a year"), settings).values()) == {
        "cached"}


def image_key(board: Storyboard, generator) -> str:
    step = next(step for step in video_graph(board) if step.id == "s001-image")
    node, _ = images.describe(step, board, Settings(), generator, {})
    return node.key


def test_the_text_is_in_the_key_of_a_provider_that_draws_it_and_not_of_one_that_does_not():
    board = storyboard()
    edited = with_text(board, 0, "Bees dance")

    assert board.ordered_scenes()[0].on_screen_text != "Bees dance"
    assert image_key(board, LocalImage()) != image_key(edited, LocalImage())
    # A cloud model is never sent it: editing it redraws (and pays for) nothing.
    assert image_key(board, GeminiImage()) == image_key(edited, GeminiImage())


def scene(**fields) -> Scene:
    return Scene(id="s001", order=0, lines=[{"text": "Hi."}], visual_prompt="sea", duration=2,
                 **fields)


def test_the_text_is_user_text_folded_and_limited_and_blank_is_none():
    assert scene(on_screen_text="  Tides\n turn  ").on_screen_text == "Tides turn"
    assert scene(on_screen_text=" ").on_screen_text is None
    assert scene().on_screen_text is None  # a storyboard from before it existed
    with pytest.raises(ValidationError, match="at most 60 characters"):
        scene(on_screen_text="x" * 61)
    with pytest.raises(ValidationError, match="control character"):
        scene(on_screen_text="a\x07b")


def test_a_rerun_with_edits_sets_or_removes_a_scenes_text_and_keeps_the_others():
    board = storyboard()
    edited = apply(board, [EditScene(scene="s001", on_screen_text="Bees dance"),
                           EditScene(scene="s002", on_screen_text=" ")])

    assert [s.on_screen_text for s in edited.ordered_scenes()] == ["Bees dance", None]
    kept = apply(board, [EditScene(scene="s001", narration="Bees dance, a lot.")])
    assert [s.on_screen_text for s in kept.ordered_scenes()] == [
        s.on_screen_text for s in board.ordered_scenes()]
