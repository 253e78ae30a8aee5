"""What a node paid for replies it could not use.

A provider bills for the work behind a reply whether or not the reply turns out usable (a
truncated clip, malformed JSON). Each retry loop that drops such a reply charges its usage here,
to the node being generated in this thread, so the ledger and the run's cost say what was
really spent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from tasks.providers.base import BrokenOutput, Usage

_meter: ContextVar[list[Usage] | None] = ContextVar("reelflow_rejected_usage", default=None)


@contextmanager
def metered() -> Iterator[list[Usage]]:
    """Collect the usage of every reply dropped while the block runs."""
    token = _meter.set([])
    try:
        yield _meter.get()
    finally:
        _meter.reset(token)


def charge(error: BrokenOutput) -> None:
    """Count what `error`'s reply was billed for (outside a node, nobody is counting)."""
    meter = _meter.get()
    if meter is not None and any(error.usage.model_dump().values()):
        meter.append(error.usage)
