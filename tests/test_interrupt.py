"""Stopping means stopping, and stopping never repays: Ctrl-C during a cloud render submits
nothing more and says in one line what was in flight; kill -9 while jobs are being polled costs
nothing extra, because the next run resumes those jobs. The real SDKs talk to the project's
fakes; the CLI runs as a user starts it, with SIGINT delivered to its process group."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.fakes.gcs import service_account_key
from tests.fakes.google import FakeGoogle
from tests.fakes.replicate import CREATE_PATH, FakeReplicate
from tests.fakes.server import Response
from tests.test_cli_input import REELFLOW

SUBMIT = "predictLongRunning"


@pytest.fixture
def slow_video(tls, tmp_path: Path, cli_env, prefect_api_url):
    """Veo clips and Replicate keyframes that stay running until the test lets them finish."""
    with FakeGoogle(tls, polls=1) as google, FakeReplicate(tls, polls=None) as replicate:
        google.server.route("POST", r"^/token$", lambda request: Response.json(
            {"access_token": "fake-vertex-token", "expires_in": 3600, "token_type": "Bearer"}))
        service_account_key(tmp_path / "adc.json", token_uri=f"{google.url}/token")
        env = {**cli_env, "PREFECT_API_URL": prefect_api_url,
               "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "adc.json"),
               "GOOGLE_CLOUD_PROJECT": "test-project", "REPLICATE_API_TOKEN": "r8-test",
               "REELFLOW_VIDEO": "veo",
               "REELFLOW_PROVIDER_OPTIONS": json.dumps({
                   "veo": {"base_url": google.url, "poll_interval_s": 0.05, "deadline_s": 120},
                   "replicate": {"base_url": replicate.url, "poll_interval_s": 0.05,
                                 "deadline_s": 120}})}
        yield {"google": google, "replicate": replicate, "env": env}


def start(args: list[str], env: dict) -> subprocess.Popen:
    """`reelflow ARGS` as a terminal starts it: its own process group, SIGINT not ignored."""
    return subprocess.Popen([REELFLOW, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_submits_nothing_more_exits_130_in_one_line_and_the_rerun_pays_nothing_twice(
        slow_video):
    google, env = slow_video["google"], slow_video["env"]
    google.hold = True
    process = start(["make", "tide pools", "--scenes", "6"], env)
    google.server.wait_for_calls("POST", SUBMIT, 4)  # four clips at once (veo's concurrency)

    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("stopped")]
    assert len(set(re.findall(r"s00\d-clip \(veo\)", line))) == 4, line  # those submitted
    assert "again" in line
    assert len(google.calls("POST", SUBMIT)) == 4  # nothing submitted after the signal

    google.hold = False
    rerun = subprocess.run([REELFLOW, "make", "tide pools", "--scenes", "6", "--json"],
                           env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    submitted = google.calls("POST", SUBMIT)
    assert len(submitted) == 6  # the four resumed, two new: none twice
    assert google.billed["video_seconds"] == sum(
        call.json()["parameters"]["durationSeconds"] for call in submitted)


def test_kill_9_while_polling_costs_nothing_extra(slow_video):
    google, replicate, env = slow_video["google"], slow_video["replicate"], slow_video["env"]
    env = {**env, "REELFLOW_IMAGE": "replicate:black-forest-labs/flux-schnell"}
    google.hold = True
    args = ["make", "tide pools", "--scenes", "4"]

    # Killed while its four keyframe predictions are polled...
    process = start(args, env)
    replicate.server.wait_for_calls("POST", CREATE_PATH, 4)
    replicate.server.wait_for_calls("GET", r"^/v1/predictions/p0004$", 1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)

    # ...then, resuming them, while its four clip operations are polled.
    replicate.polls = 1
    process = start(args, env)
    google.server.wait_for_calls("POST", SUBMIT, 4)
    google.server.wait_for_calls("POST", "fetchPredictOperation", 4)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    assert len(replicate.server.calls("POST", CREATE_PATH)) == 4  # resumed, none created again

    google.hold = False
    rerun = subprocess.run([REELFLOW, *args, "--json"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert len(replicate.server.calls("POST", CREATE_PATH)) == 4
    assert len(google.calls("POST", SUBMIT)) == 4
    assert replicate.succeeded == 4
    assert google.billed["video_seconds"] == sum(
        call.json()["parameters"]["durationSeconds"] for call in google.calls("POST", SUBMIT))


# reelflow serve ---------------------------------------------------------------------------


def serving(env: dict, *args: str) -> subprocess.Popen:
    """`reelflow serve`, once its deployments are registered."""
    process = start(["serve", *args], env)
    for line in process.stderr:
        if line.startswith("Deployments:"):
            return process
    raise AssertionError(f"serve exited with {process.wait()} before serving")


def stopped_by_ctrl_c(process: subprocess.Popen) -> str:
    """Ctrl-C to serve's process group; its stderr once everything in that group has exited."""
    os.killpg(process.pid, signal.SIGINT)
    process.wait(30)  # a bound for a hang, not a speed check
    # Read through the same buffered file `serving` read from: communicate() would read the
    # pipe underneath it and miss what that file already holds.
    err = process.stderr.read()
    assert process.returncode == 130, err
    with pytest.raises(ProcessLookupError):  # nothing it started is left behind
        os.killpg(process.pid, 0)
    return err


def test_ctrl_c_on_an_idle_serve_stops_its_own_prefect_server_last(cli_env, tmp_path):
    env = {name: value for name, value in cli_env.items() if name != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")  # its own server's database
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = serving(env, "--port", str(port))

    err = stopped_by_ctrl_c(process)

    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("stopped:")
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass  # the server it started is down too


def test_ctrl_c_on_serve_with_a_run_in_flight_ends_the_run_cancelled(slow_video):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    google = slow_video["google"]
    google.hold = True
    process = serving(slow_video["env"])
    run = run_deployment("make-video/make-video", timeout=0,
                         parameters={"topic": "tide pools", "scenes": 2})
    google.server.wait_for_calls("POST", SUBMIT, 2)

    err = stopped_by_ctrl_c(process)

    assert "Traceback" not in err
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state.is_cancelled(), state
    assert "s001-clip (veo)" in state.message and "s002-clip (veo)" in state.message
    assert len(google.calls("POST", SUBMIT)) == 2
