"""Node events for whoever shows progress (the CLI's progress bars) in the flow's process.

The flow emits each node as its task finishes, wherever the task ran: listeners live in this
process, and a Dask worker's events would never reach them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_listeners: list[Callable[[Any], None]] = []
_lock = threading.Lock()


def emit(event: Any) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(event)


@contextmanager
def listening(listener: Callable[[Any], None]) -> Iterator[None]:
    """Call `listener` with every node that finishes while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
