"""`reelflow api`: the HTTP API served by Hypercorn (HTTP/1.1 and HTTP/2, HTTP/3 over QUIC
with a certificate) and, in the same event loop, the deployments its jobs run on."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from config.settings import Settings
from flows.api.app import create_app
from flows.api.keys import Keys


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
    from prefect.flows import aserve

    app = create_app(settings, keys, public_url)
    requests = logging.getLogger("reelflow.api")  # one JSON line per request, on stderr
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    requests.addHandler(handler)
    requests.setLevel(logging.INFO)
    requests.propagate = False

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        runner = (asyncio.create_task(aserve(*deployments, limit=limit,
                                             print_starting_message=False))
                  if deployments else None)
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)
        if runner:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    asyncio.run(main())
