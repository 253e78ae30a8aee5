"""The whole pipeline on a real Prefect server: render, edit, render again, and check what ran.

Each test reads like a script: render, change one thing, render, then `check_execution`.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from cache import open_store
from config.catalog import CONFIG_DIR
from flows.video import render_storyboard
from tasks.compose import segments
from tasks.ffmpeg import probe
from tasks.loudness import TRUE_PEAK_MAX, measure
from tasks.manifest import RenderSummary
from tasks.providers.local_image import LocalImage
from tasks.providers.local_planner import LocalPlanner
from tasks.storyboard import Line, Storyboard, VideoRequest
from tests.composing import segments_changed, segments_reading
from tests.pacing import paced_seconds

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")


def storyboard(scenes: int = 3, **request) -> Storyboard:
    return LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=scenes, **request)).storyboard


def render(board: Storyboard) -> tuple[RenderSummary, dict[str, str]]:
    """Render `board`; return the summary and each task run's Prefect state name by node id."""
    state = render_storyboard(board, return_state=True)
    summary = state.result()
    return summary, prefect_states(state.state_details.flow_run_id)


def prefect_states(flow_run_id, timeout_s: float = 60) -> dict[str, str]:
    """Each task run's state name, as the run's server has it. The server records task states
    from events in the background, so a run that just finished may still show a task without
    its last state; this asks again until none is missing or running (no event says when)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        settled = all(run.state and not run.state.is_running() for run in runs)
        if settled or time.monotonic() > deadline:
            return {run.name: run.state.name if run.state else "no state" for run in runs}
        time.sleep(0.2)


def check_execution(summary: RenderSummary, did: set[str]) -> None:
    generated = {node.id for node in summary.nodes if node.status == "generated"}
    assert generated == did


def edit_scene(board: Storyboard, index: int, **changes) -> Storyboard:
    scenes = list(board.scenes)
    scenes[index] = scenes[index].model_copy(update=changes)
    return board.model_copy(update={"scenes": scenes})


def test_first_render_publishes_a_playable_video_with_karaoke_subtitles():
    board = storyboard(3)
    summary, _ = render(board)

    check_execution(summary, {n.id for n in summary.nodes})
    assert summary.generated == 3 * 3 + 3 and summary.cached == 0  # one segment, compose, publish
    info = probe(summary.video)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (180, 320)

    folder = summary.video.parent
    assert sorted(p.name for p in folder.iterdir()) == [
        "history.json", "manifest.json", "storyboard.json", "subtitles.ass", "video.mp4"]
    # Paced by its speech, not the planner's guess; at the default loudness, as measured.
    manifest = json.loads((folder / "manifest.json").read_text())
    store = open_store(os.environ["REELFLOW_STORE"])
    assert info.duration == pytest.approx(paced_seconds(manifest, store), abs=0.1)
    published = measure(summary.video)
    assert manifest["loudness"] == {"target_lufs": -14, "integrated_lufs": published.integrated,
                                    "true_peak_dbtp": published.true_peak,
                                    "passes": manifest["loudness"]["passes"]}
    assert abs(published.integrated + 14) <= 1 and published.true_peak <= TRUE_PEAK_MAX
    assert Storyboard.model_validate_json((folder / "storyboard.json").read_text()) == board
    ass = (folder / "subtitles.ass").read_text()
    events = [line for line in ass.splitlines() if line.startswith("Dialogue:")]
    assert events and all(re.search(r"\\k[f]?\d+", event) for event in events)
    captions = " ".join(re.sub(r"\{\\kf?\d+\}", "", event.split(",", 9)[9]) for event in events)
    assert captions == " ".join(scene.narration for scene in board.ordered_scenes())

    manifest = json.loads(summary.manifest.read_text())
    for node in manifest["nodes"]:
        assert node["provider"] and node["model"] and "seconds" in node
        assert node["kind"] == "publish" or (len(node["key"]) == 64 and node["outputs"])


def test_publishing_sweeps_old_scratch_of_killed_publishes_and_nothing_else(workspace):
    """Scratch an hour old was left by a killed publish; younger scratch may be another
    render's, in progress; other dot files are the user's."""
    out = workspace["out"]
    old_staging, old_stale, young_staging, users = (
        out / ".incoming-old", out / ".stale-video-123", out / ".incoming-young", out / ".git")
    for folder in (old_staging, old_stale, young_staging, users):
        folder.mkdir(parents=True)
        (folder / "video.mp4").write_bytes(b"partial")
    for folder in (old_staging, old_stale, users):
        os.utime(folder, (1, 1))

    render(storyboard(1))

    assert sorted(p.name for p in out.glob(".*")) == [".git", ".incoming-young"]


def test_no_change_rerun_generates_nothing_and_shows_cached_in_prefect():
    board = storyboard(3)
    render(board)
    summary, states = render(board)

    check_execution(summary, set())
    assert summary.cached == summary.generated + len(summary.nodes)
    node_tasks = {name: state for name, state in states.items() if name.startswith("s0")}
    assert len(node_tasks) == 9 + len(segments(board))
    assert set(node_tasks.values()) == {"Cached"}
    assert states["compose"] == "Cached"


def test_narration_edit_regenerates_only_that_scenes_speech():
    board = storyboard(3)
    render(board)
    second = board.ordered_scenes()[1]
    edited = edit_scene(board, 1, lines=[Line(text="A brand new line about crabs.")])
    summary, states = render(edited)

    check_execution(summary, {f"{second.id}-l1-tts", *segments_reading(board, second.id),
                              "compose", "publish"})
    assert states[f"{second.id}-l1-tts"] == "Completed"
    assert states[f"{second.id}-image"] == "Cached"


def test_visual_prompt_edit_regenerates_only_that_scenes_image_and_clip():
    board = storyboard(3)
    render(board)
    first = board.ordered_scenes()[0]
    summary, _ = render(edit_scene(board, 0, visual_prompt="a starfish at dusk"))

    check_execution(summary, {f"{first.id}-image", f"{first.id}-clip",
                              *segments_reading(board, first.id), "compose", "publish"})


def test_reordering_scenes_regenerates_only_the_composition():
    board = storyboard(3)
    render(board)
    reordered = edit_scene(edit_scene(board, 0, order=5), 2, order=0)
    summary, _ = render(reordered)

    check_execution(summary, {*segments_changed(board, reordered), "compose", "publish"})


def test_identical_narration_in_two_scenes_is_synthesized_once():
    board = storyboard(2)
    same = board.ordered_scenes()[0].lines
    summary, _ = render(edit_scene(board, 1, lines=same))

    tts = [node for node in summary.nodes if node.kind == "tts"]
    assert sorted(node.status for node in tts) == ["cached", "generated"]


class ConstantImage(LocalImage):
    """Paints the same picture whatever the prompt: upstream changes, bytes do not."""

    name = "constant"

    def generate(self, request):
        return super().generate(request.model_copy(update={"prompt": "always the same",
                                                           "text": None}))


def test_identical_bytes_from_a_changed_upstream_node_invalidate_nothing_downstream(
        monkeypatch, tmp_path, register_provider):
    register_provider(ConstantImage)
    monkeypatch.setenv("REELFLOW_IMAGE", "constant")
    use_prices(monkeypatch, tmp_path,
               lambda prices: prices.update(constant={"procedural": {"per_image": 0.0}}))
    board = storyboard(2)
    render(board)
    first = board.ordered_scenes()[0]
    summary, _ = render(edit_scene(board, 0, visual_prompt="a different prompt"))

    check_execution(summary, {f"{first.id}-image"})  # the clip, compose and publish were reused


def test_cost_ledger_reports_what_was_paid_and_what_reuse_saved(monkeypatch, tmp_path):
    def paid(prices):
        prices["espeak"]["espeak-ng"]["per_1k_characters"] = 0.30
        prices["local"]["procedural"]["per_image"] = 0.04
        prices["kenburns"]["ffmpeg"]["per_video_second"] = 0.10

    use_prices(monkeypatch, tmp_path, paid)
    board = storyboard(3)
    characters = sum(len(line.text) for scene in board.scenes for line in scene.lines)
    expected = round(characters / 1000 * 0.30 + 3 * 0.04 + board.duration * 0.10, 6)

    first, _ = render(board)
    paid = json.loads(first.manifest.read_text())["nodes"]
    again, _ = render(board)
    reused = json.loads(again.manifest.read_text())["nodes"]

    assert first.cost_usd == pytest.approx(expected)
    assert sum(node["cost_usd"] for node in paid) == pytest.approx(expected)
    assert (again.cost_usd, again.saved_usd) == (0, pytest.approx(expected))
    assert sum(node["saved_usd"] for node in reused) == pytest.approx(expected)


def test_subtitle_tags_and_filter_syntax_in_narration_are_shown_literally():
    hostile = r"{\pos(0,0)}Hi [0:v]scale=2:2;[x] it's 100% {\an8}done\N"
    board = edit_scene(storyboard(1), 0, lines=[Line(text=hostile)])
    summary, _ = render(board)

    ass = (summary.video.parent / "subtitles.ass").read_text()
    dialogue = " ".join(re.sub(r"\{\\kf?\d+\}", "", line.split(",", 9)[9])
                        for line in ass.splitlines() if line.startswith("Dialogue:"))
    assert r"{\pos(0,0)}" not in dialogue and r"{\an8}" not in dialogue
    unescaped = dialogue.replace("\\\u200d", "\\").replace("\\{", "{").replace("\\}", "}")
    assert unescaped == hostile
    manifest = json.loads(summary.manifest.read_text())
    assert probe(summary.video).duration == pytest.approx(
        paced_seconds(manifest, open_store(os.environ["REELFLOW_STORE"])), abs=0.1)


def use_prices(monkeypatch, tmp_path, change) -> None:
    """Render with a price table changed by `change`, set as a user would: REELFLOW_PRICES."""
    prices = yaml.safe_load((CONFIG_DIR / "prices.yaml").read_text())
    change(prices)
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(prices))
    monkeypatch.setenv("REELFLOW_PRICES", str(path))


def test_a_provider_with_a_prefect_tag_limit_runs_its_tasks_within_it():
    """With a limit of 1 on `provider:espeak`, speech tasks carry the tag and never overlap;
    the other providers have no limit, so their tasks carry no tag (and skip Prefect's slot
    acquisition)."""
    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag="provider:espeak", concurrency_limit=1)
        try:
            state = render_storyboard(storyboard(3), return_state=True)
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        finally:
            client.delete_concurrency_limit_by_tag("provider:espeak")
    speech = sorted((run for run in runs if run.name.endswith("-tts")), key=lambda r: r.start_time)
    assert len(speech) == 3 and all(run.tags == ["provider:espeak"] for run in speech)
    assert all(earlier.end_time <= later.start_time for earlier, later in zip(speech, speech[1:]))
    assert all(not run.tags for run in runs if not run.name.endswith("-tts"))
