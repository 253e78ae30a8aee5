"""`reelflow serve` and the deployments, through a real Prefect server: runs started through
the API with custom parameters, artifacts, edit-and-rerun, a batch with a bad topic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.deployments import run_deployment

from tests.composing import segments_reading
from tests.test_cli_input import REELFLOW
from tests.test_cli_render import board_with_a_changed_picture
from tests.test_pipeline import prefect_states

RUN_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def served(prefect_api_url: str, tmp_path_factory) -> dict[str, Path]:
    """`reelflow serve` on the session's Prefect server, with its own store and output folder."""
    root = tmp_path_factory.mktemp("served")
    paths = {"store": root / "store", "out": root / "out"}
    env = {**os.environ, "PREFECT_API_URL": prefect_api_url, "REELFLOW_STORE": str(paths["store"]),
           "REELFLOW_OUT": str(paths["out"]), "REELFLOW_SHORT_SIDE": "180", "REELFLOW_FPS": "12"}
    env.pop("REELFLOW_PROFILE", None)
    env.pop("PREFECT_LOGGING_LEVEL", None)  # as a user has it: reelflow picks the level
    # SIGINT restored: a test run from a background job would hand serve an ignored SIGINT.
    process = subprocess.Popen([REELFLOW, "serve"], env=env, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # It says which deployments it serves once they are registered.
        for line in process.stderr:
            if line.startswith("Deployments:"):
                break
        yield paths
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(60) is not None


def flow_run_artifacts(flow_run_id) -> list:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def run(name: str, **parameters):
    return run_deployment(name, parameters=parameters, timeout=RUN_TIMEOUT_S)


def test_make_video_runs_from_the_deployment_and_shows_its_artifacts(served):
    flow_run = run("make-video/make-video", topic="coral reefs", scenes=2, style="neon")

    assert flow_run.state.is_completed(), flow_run.state.message
    artifacts = {artifact.type: artifact for artifact in flow_run_artifacts(flow_run.id)}
    assert artifacts["progress"].data == 100
    summary = next(a for a in flow_run_artifacts(flow_run.id)
                   if a.type == "markdown" and "| node |" in a.data)
    assert "| s001-l1-tts | espeak | generated |" in summary.data
    assert "a full rerun would have cost" in summary.data
    link = next(a for a in flow_run_artifacts(flow_run.id)
                if isinstance(a.data, str) and a.data.startswith("[Coral reefs"))
    assert link.data.endswith("/video.mp4)")  # a link artifact is markdown: [text](url)
    assert any('"scenes"' in a.data for a in flow_run_artifacts(flow_run.id)
               if a.type == "markdown")
    names = set(prefect_states(flow_run.id))
    assert {"plan-storyboard", "s001-l1-tts", "s002-image", "s002-clip", "compose"} <= names
    with get_client(sync_client=True) as client:  # the UI's Logs tab tells the run's story
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[flow_run.id])))
    finished = {log.task_run_id for log in logs
                if log.task_run_id and log.message.startswith("Finished in state")}
    assert len(finished) == len(names)  # every task run logged its end


def test_rerun_with_edits_regenerates_only_the_edited_scene(served):
    made = run("make-video/make-video", topic="paper boats", scenes=3)
    assert made.state.is_completed(), made.state.message
    folder = next(p.name for p in served["out"].iterdir() if p.name.startswith("paper-boats-"))

    rerun = run("rerun-with-edits/rerun-with-edits", video=folder,
                operations=[{"op": "edit", "scene": "s002",
                             "narration": "Fold the paper in half, then again."}])

    assert rerun.state.is_completed(), rerun.state.message
    states = prefect_states(rerun.id)
    regenerated = {name for name, state in states.items() if state != "Cached"}
    board = json.loads((served["out"] / folder / "storyboard.json").read_text())
    assert regenerated == {"s002-l1-tts", *segments_reading(board, "s002"), "compose",
                           "publish-folder"}


def test_a_batch_with_a_bad_topic_makes_the_others_and_says_what_failed(served):
    batch = run("make-videos/make-videos", topics=["sea otters", "x" * 10_000, "kelp forests"],
                scenes=1, concurrency=2)

    assert batch.state.is_completed(), batch.state.message
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[batch.id])))
    assert sorted(child.state.type.value for child in children) == [
        "COMPLETED", "COMPLETED", "FAILED"]
    failed = next(child for child in children if child.state.is_failed())
    assert "topic" in failed.state.message and "2000 characters" in failed.state.message
    table = next(a for a in flow_run_artifacts(batch.id) if a.type == "table")
    assert "2 of 3 videos made" in table.description


def test_a_failed_run_says_why_and_the_same_run_again_resumes_from_the_store(served, tmp_path):
    blocked = tmp_path / "videos"
    blocked.write_text("a file where the output folder should be")
    parameters = dict(topic="river deltas", scenes=2, options={"out": str(blocked)})

    failed = run("make-video/make-video", **parameters)
    assert failed.state.is_failed()
    assert "publish: cannot write to" in failed.state.message

    blocked.unlink()
    resumed = run("make-video/make-video", **parameters)
    assert resumed.state.is_completed(), resumed.state.message
    states = prefect_states(resumed.id)
    assert {name for name, state in states.items() if state != "Cached"} == {"publish-folder"}


def test_a_failed_node_names_itself_its_provider_and_the_reason(served, tmp_path):
    storyboard, face = board_with_a_changed_picture(tmp_path)
    failed = run("render-storyboard/render-storyboard", storyboard=storyboard)
    assert failed.state.is_failed()
    assert (f"sprite-ada: reelflow/pictures failed: {face} changed since the storyboard was "
            "written" in failed.state.message)
