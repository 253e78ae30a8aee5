"""The Prefect server a command uses, unless PREFECT_API_URL names one: `reelflow serve`'s,
and the temporary one of a `plan`, `render` or `make`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

STARTUP_DEADLINE_S = 180  # a cold server takes about 20 s on two cores
STOP_DEADLINE_S = 30


@contextmanager
def prefect_server(host: str, port: int) -> Iterator[str]:
    """The API URL of the server to use: PREFECT_API_URL's, or one started here and stopped
    when the block ends."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    api_url = f"http://{host}:{port}/api"
    # The UI calls the API at PREFECT_SERVER_API_HOST/PORT (default 127.0.0.1:4200), which
    # `prefect server start --host/--port` does not set: without them it asks the wrong port.
    env = {**os.environ, "PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": str(port)}
    # Its own session: a terminal's Ctrl-C reaches the runner and its flow runs, which still
    # need the server to record how they stopped; the server is stopped last, below.
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start",
                               "--host", host, "--port", str(port)], env=env,
                              start_new_session=True)
    try:
        _wait_until_healthy(api_url, server)
        yield api_url
    finally:
        server.terminate()
        try:
            server.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def deployments_served(settings, host: str, port: int, extra: dict | None = None
                       ) -> Iterator[tuple[str, list]]:
    """`reelflow serve`'s and `reelflow api`'s start: the Prefect server (PREFECT_API_URL's or
    one started here), the provider concurrency limits on it and reelflow's deployments
    registered. Yields the server's API URL and the deployments, to be served."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.catalog import deployments
    from flows.limits import create_concurrency_limits
    from flows.runners import task_runner

    with prefect_server(host, port) as api_url, \
            temporary_settings({PREFECT_API_URL: api_url, **(extra or {})}):
        create_concurrency_limits()
        served = deployments(task_runner(settings))
        for deployment in served:  # registered before we say so; serving repeats it harmlessly
            deployment.apply()
        yield api_url, served


def _wait_until_healthy(api_url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {server.returncode}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)  # polling a process we started; there is no event to wait on
    raise RuntimeError(f"the Prefect server did not answer within {STARTUP_DEADLINE_S} s")



@contextmanager
def command_server(log: Path) -> Iterator[None]:
    """Prefect's temporary server for one command, as Prefect would start it on the first call,
    but with its output in the command's log. It is stopped the moment the run ends, and it
    then prints tracebacks for the last events it had not written (a run that reuses
    everything ends first): they belong in the log, not under the video's path."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    server = SubprocessASGIServer()
    terminal = os.dup(2)
    try:
        with open(log, "a", encoding="utf-8") as sink:
            os.dup2(sink.fileno(), 2)  # the server inherits the log as its stderr
            try:
                server.start()
            finally:
                os.dup2(terminal, 2)
    finally:
        os.close(terminal)
    # start() registered the server's stop at exit: after Prefect's workers have sent their
    # last logs and events, as with the server Prefect starts itself.
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield
