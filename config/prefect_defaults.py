"""Prefect settings reelflow needs on a small machine, applied unless the user set them."""

from __future__ import annotations

import os

PREFECT_DEFAULTS = {
    # Analytics lock the ephemeral server's SQLite database.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # A cold ephemeral server takes about 20 s to start on 2 cores.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    # Progress bars show what happens; Prefect's own lines would interleave with them.
    # Runs served to the UI log at INFO instead (`reelflow serve`): its Logs tab shows them.
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def apply_prefect_defaults() -> set[str]:
    """Set each default the environment does not set; return the names it set."""
    applied = {name for name in PREFECT_DEFAULTS if name not in os.environ}
    for name in applied:
        os.environ[name] = PREFECT_DEFAULTS[name]
    return applied
