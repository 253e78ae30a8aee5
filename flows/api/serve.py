"""`reelflow api`: the HTTP API served by Hypercorn (HTTP/1.1 and HTTP/2, HTTP/3 over QUIC
with a certificate) and, in a thread beside it, the runner of the deployments its jobs run on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
import threading
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from config.settings import Settings
from flows.api.app import create_app
from flows.api.keys import Keys
from flows.serve import STOP_DEADLINE_S


def hypercorn_config(host: str, port: int, quic_bind: str | None, certfile: Path | None,
                     keyfile: Path | None) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None  # the app logs one JSON line per request itself
    if certfile:
        config.certfile, config.keyfile = str(certfile), str(keyfile)
    if quic_bind:
        config.quic_bind = [quic_bind]
    return config


def serve_api(settings: Settings, keys: Keys, config: Config, public_url: str,
              deployments: list, limit: int) -> None:
    """Serve until Ctrl-C or SIGTERM: then the API stops taking requests and the runner
    stops taking runs."""
    app = create_app(settings, keys, public_url)
    requests = logging.getLogger("reelflow.api")  # one JSON line per request, on stderr
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    requests.addHandler(handler)
    requests.setLevel(logging.INFO)
    requests.propagate = False
    runner = _Runner(deployments, limit) if deployments else None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)

    try:
        asyncio.run(main())
    finally:
        if runner:
            runner.stop()


class _Runner:
    """Prefect's runner in a thread of its own: run in the main thread, it takes SIGTERM for
    itself and exits the process without stopping the API."""

    def __init__(self, deployments: list, limit: int):
        from prefect.flows import aserve

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="reelflow-runner",
                                       daemon=True)
        self.thread.start()
        self.serving = asyncio.run_coroutine_threadsafe(
            aserve(*deployments, limit=limit, print_starting_message=False), self.loop)

    def stop(self) -> None:
        self.serving.cancel()  # the runner takes no more runs
        try:
            self.serving.result(timeout=STOP_DEADLINE_S)
        except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=STOP_DEADLINE_S)
