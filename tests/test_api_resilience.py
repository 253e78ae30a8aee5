"""Jobs through trouble: a cancel in the middle of a render, the API killed with SIGKILL.

Each test starts its own `reelflow api` with workers. They live in a module of their own so
that no other API's runner is serving the same deployments meanwhile: a run goes to whichever
runner takes it, and another one would render it with its own store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
from prefect.client.orchestration import get_client

from tests.test_api import REELFLOW, _start, _stop, _wait
from tests.test_gcs_leases import wait_until, with_point


def test_a_job_cancelled_mid_render_publishes_nothing_and_its_rerun_reuses_what_was_made(
        tmp_path, prefect_api_url):
    # The render holds still inside its second clip (the first is stored) while it is
    # cancelled: no sleep decides when.
    go = tmp_path / "go"
    api = _start(tmp_path / "cancel", prefect_api_url, env=with_point(
        {}, "REELFLOW_TEST_PAUSE_AT", f"tasks.providers.kenburns:KenBurnsAnimator.animate:2:{go}"))
    body = {"prompt": "Harbour seals", "scenes": 2, "music": False}
    try:
        with api.client(api.keys[0]) as client:
            job = client.post("/jobs", json=body).json()
            wait_until(lambda: Path(f"{go}.waiting").exists(), "the second clip", timeout_s=240)
            assert client.get(f"/jobs/{job['id']}").json()["status"] in ("started", "progress")
            asked = client.post(f"/jobs/{job['id']}/cancel")
            assert asked.status_code == 202, asked.text
            stopped = _wait(client, job["id"], {"canceled", "finished", "failed"})
            assert stopped["status"] == "canceled", stopped
            assert client.get(f"/jobs/{job['id']}/video").status_code == 409
            assert not list(api.out.glob("*/video.mp4"))  # nothing half-made is published
            # The run's process is stopped (the held call never returns: it is killed after
            # Prefect's grace period), and no ffmpeg of it is left.
            server = psutil.Process(api.process.pid)
            wait_until(lambda: not server.children(recursive=True), "the run's process ends",
                       timeout_s=120)

            env = {**os.environ, "REELFLOW_STORE": str(api.out.parent / "store")}
            verified = subprocess.run([REELFLOW, "cache", "verify"], capture_output=True,
                                      text=True, env=env, timeout=120)
            assert verified.returncode == 0 and "0 problems" in verified.stdout, verified.stdout

            go.touch()  # the rerun is a new process: the pause point counts its own calls
            again = client.post("/jobs", json=body).json()
            assert _wait(client, again["id"], {"finished", "failed"})["status"] == "finished"
            nodes = client.get(f"/jobs/{again['id']}/manifest").json()["nodes"]
            # Clips are made in parallel: whichever came second was held and never stored.
            clips = sorted(node["status"] for node in nodes if node["kind"] == "clip")
            assert clips == ["cached", "generated"]
    finally:
        _stop(api)


def test_jobs_survive_the_api_killed_with_9_and_each_finishes_exactly_once(
        tmp_path, prefect_api_url):
    folder = tmp_path / "killed"
    api = _start(folder, prefect_api_url, "--limit", "2", short_side="64",
                 api_jobs_at_once="40")
    try:
        with api.client(api.keys[0]) as client:
            made = [client.post("/jobs", json={"prompt": f"Island number {n}", "scenes": 1,
                                               "music": False}).json()["id"] for n in range(20)]
            wait_until(lambda: any(j["status"] in ("started", "progress", "finished")
                                   for j in listed(client)), "a job under way", timeout_s=120)
    finally:  # even when the wait fails: a runner left behind would take later tests' runs
        api.process.kill()  # SIGKILL: no shutdown of any kind
        api.process.wait(timeout=30)
    again = _start(folder, prefect_api_url, "--limit", "2", short_side="64",
                   api_jobs_at_once="40", keys=api.keys)
    try:
        with again.client(api.keys[0]) as client:
            known = {job["id"] for job in client.get("/jobs", params={"limit": 50}).json()}
            assert set(made) <= known
            finals = [_wait(client, job_id, {"finished", "failed", "canceled"}) for job_id in made]
        assert [job["status"] for job in finals] == ["finished"] * 20
        with get_client(sync_client=True) as prefect:
            for job_id in made:
                states = prefect.read_flow_run_states(job_id)
                assert sum(state.type.value == "RUNNING" for state in states) == 1, job_id
                assert sum(state.type.value == "COMPLETED" for state in states) == 1, job_id
    finally:
        _stop(again)


def listed(client) -> list[dict]:
    """The key's jobs; none while the API answers a poll with an error (busy, or starting)."""
    response = client.get("/jobs", params={"limit": 50})
    return response.json() if response.status_code == 200 else []
