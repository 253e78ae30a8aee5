"""Prefect settings reelflow needs on a small machine, applied unless the user set them."""

from __future__ import annotations

import os

PREFECT_DEFAULTS = {
    # Analytics lock the ephemeral server's SQLite database.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # A cold ephemeral server takes about 20 s to start on 2 cores.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    # Progress bars show what happens; Prefect's own lines would interleave with them.
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def apply_prefect_defaults() -> None:
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
