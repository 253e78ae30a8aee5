"""The composition is content-addressed per segment: an edit of one scene of a 24-scene video
encodes one segment (two where the scene ends one), and the video is the one a cold render of
the edited storyboard makes, frame for frame and in loudness."""

from __future__ import annotations

import wave
from pathlib import Path

from cache import open_store
from config.settings import Settings
from flows.editing import EditScene, apply
from tasks.compose import segments
from tasks.graph import run_step, video_graph
from tasks.loudness import measure
from tasks.nodes import NodeOutcome
from tasks.providers.local_planner import LocalPlanner
from tasks.storyboard import Storyboard, VideoRequest
from tests.composing import segments_reading
from tests.test_story import frame_at

SCENES = 24
SETTINGS = {"short_side": 64, "fps": 8, "scene_pad_seconds": 0.5}
SCRIPT = "\n\n".join(f"Fact {n}: the tide turns twice a day." for n in range(1, SCENES + 1))


def render(board: Storyboard, store: Path) -> dict[str, NodeOutcome]:
    """Every node of `board` in graph order, in this process (no flow, no server)."""
    settings = Settings(store=str(store), **SETTINGS)
    outcomes: dict[str, NodeOutcome] = {}
    for step in video_graph(board):
        outcomes[step.id] = run_step(step, {needed: outcomes[needed] for needed in step.needs},
                                     board, settings)
    return outcomes


def generated(outcomes: dict[str, NodeOutcome]) -> set[str]:
    return {node for node, outcome in outcomes.items() if outcome.status == "generated"}


def video(outcomes: dict[str, NodeOutcome], store: Path) -> Path:
    return open_store(str(store)).blob_path(outcomes["compose"].output("video").digest)


def test_a_narration_edit_encodes_only_its_segments_and_matches_a_cold_render(tmp_path):
    board = LocalPlanner().plan(VideoRequest(script=SCRIPT)).storyboard
    assert len(segments(board)) > 3
    render(board, tmp_path / "store")
    scene = board.ordered_scenes()[13].id
    edited = apply(board, [EditScene(scene=scene, narration="Fact 14: the moon does the pulling.")])

    again = render(edited, tmp_path / "store")
    touched = segments_reading(edited, scene)
    assert 1 <= len(touched) <= 2
    assert generated(again) == {f"{scene}-l1-tts", *touched, "compose"}

    cold = render(edited, tmp_path / "cold")
    assert len(generated(cold)) == len(cold)
    ours, theirs = video(again, tmp_path / "store"), video(cold, tmp_path / "cold")
    start = 0.0
    for step in (s for s in video_graph(edited) if s.kind == "tts"):  # one line per scene
        seconds = speech_seconds(again[step.id], tmp_path / "store") + SETTINGS["scene_pad_seconds"]
        middle = start + seconds / 2
        assert (frame_at(ours, middle) == frame_at(theirs, middle)).all(), step.scene
        start += seconds
    assert measure(ours) == measure(theirs)


def speech_seconds(outcome: NodeOutcome, store: Path) -> float:
    with wave.open(str(open_store(str(store)).blob_path(outcome.output("audio").digest))) as audio:
        return audio.getnframes() / audio.getframerate()
