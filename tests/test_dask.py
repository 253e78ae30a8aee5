"""Renders whose tasks run on a local Dask cluster of two worker processes: one --max-cost
ledger for the whole run, the CLI's progress display fed from the flow's process, and workers
that report to the flow's Prefect server."""

from __future__ import annotations

import json
import os

import distributed
import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect_dask import DaskTaskRunner

from cache.store import ArtifactStore
from config.settings import load_settings
from flows.options import RenderOptions
from flows.runners import local_cluster, task_runner
from flows.video import RenderFailed, make_video, render_storyboard
from tasks.budget import BudgetExceeded
from tasks.nodes import NodeOutcome
from tasks.preflight import estimate_usd
from tasks.providers.local_planner import LocalPlanner
from tasks.storyboard import VideoRequest
from tests.fakes.google import FakeGoogle, blocked_prompt
from tests.test_pipeline import prefect_states
from tests.test_progress import check_every_node_shown_once, made_with_progress

TWO_WORKERS = {"n_workers": 2, "processes": True, "threads_per_worker": 1, "host": "127.0.0.1",
               "dashboard_address": None}

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")


def test_workers_spend_from_one_ledger_and_never_pass_max_cost_together(tls, tmp_path,
                                                                          monkeypatch, workspace):
    """Gemini refuses every keyframe, so each falls back to a painter that costs three times
    as much: the estimate (Gemini's price) fits the cap, the fallbacks do not. One fallback
    fits; with a ledger per worker process, each worker would pay for one."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(json.dumps({
        "gemini-image": {"gemini-2.5-flash-image": {"per_image": 0.10}},
        "local": {"procedural": {"per_image": 0.30}},
        "espeak": {"espeak-ng": {"per_1k_characters": 0.0}},
        "kenburns": {"ffmpeg": {"per_video_second": 0.0}},
        "reelflow": {"ffmpeg": {}}}))
    board = LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=4)).storyboard
    with FakeGoogle(tls) as google:
        google.replies = [blocked_prompt() for _ in board.scenes]
        monkeypatch.setenv("GEMINI_API_KEY", "canary-gemini-0001")
        monkeypatch.setenv("REELFLOW_IMAGE", "gemini-image,local")
        monkeypatch.setenv("REELFLOW_PRICES", str(prices))
        monkeypatch.setenv("REELFLOW_PROVIDER_OPTIONS", json.dumps(
            {"gemini-image": {"base_url": google.url, "attempts": 1}}))
        cap = estimate_usd(board, load_settings())
        assert cap == pytest.approx(0.40)

        state = render_storyboard.with_options(task_runner=DaskTaskRunner(
            cluster_class=local_cluster, cluster_kwargs=TWO_WORKERS))(
            board, RenderOptions(max_cost=cap), return_state=True)

    with pytest.raises(RenderFailed, match="max-cost: s00[1-4]-image would cost") as failed:
        state.result()
    assert all(isinstance(cause, BudgetExceeded) for cause in failed.value.causes)
    records = list(ArtifactStore(workspace["store"]).records())
    assert [record.provider for record in records if record.kind == "image"] == ["local"]
    assert sum(record.cost_usd for record in records) == pytest.approx(0.30)  # at most the cap
    assert google.billed["image"] == 0
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_global_concurrency_limit_by_name(
            f"reelflow-budget-{state.state_details.flow_run_id}")  # gone with its run


def test_the_progress_display_reaches_every_total_when_workers_run_the_tasks(prefect_api_url):
    made = []
    with local_cluster(**TWO_WORKERS) as cluster, distributed.Client(cluster) as client:
        told = client.run(lambda: os.environ["PREFECT_API_URL"])
        with distributed.get_task_stream(client) as tasks:
            bars, events = made_with_progress(lambda: made.append(make_video.with_options(
                task_runner=DaskTaskRunner(address=cluster.scheduler_address))(
                topic="tide pools", scenes=3, return_state=True)))

    assert {url.rstrip("/") for url in told.values()} == {prefect_api_url.rstrip("/")}
    ran_on = {task["key"].rsplit("-", 1)[0]: task["worker"] for task in tasks.data}
    assert "make_node" in ran_on and set(ran_on.values()) <= set(told)  # on the workers
    check_every_node_shown_once(bars, events)
    # The workers reported every task to the flow's server, not to servers of their own.
    reported = prefect_states(made[0].state_details.flow_run_id)
    nodes = {event.id for event in events if isinstance(event, NodeOutcome)} - {"plan"}
    assert nodes | {"plan-storyboard"} <= set(reported)
    assert set(reported.values()) == {"Completed"}


def test_an_existing_cluster_without_a_prefect_api_gets_one_warning_line(monkeypatch, capsys):
    monkeypatch.setenv("REELFLOW_TASK_RUNNER", "dask")
    monkeypatch.setenv("REELFLOW_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        task_runner(load_settings())
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and warning.startswith("warning: dask: ")
    assert "tcp://10.0.0.5:8786" in warning and "set PREFECT_API_URL for reelflow" in warning

    task_runner(load_settings())  # this session's server: the workers get it from the run
    assert capsys.readouterr().err == ""
