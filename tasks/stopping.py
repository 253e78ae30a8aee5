"""Stopping a run: once asked (Ctrl-C, SIGTERM, a Prefect cancellation), no provider call
starts in this process, pollers stop waiting, and what was in flight is remembered to say so.

Signals reach the main thread only, while nodes run in worker threads: the flow's main thread
turns whatever interrupts it into `request`, and every provider call and poll asks `check` or
`wait`. A job a provider had already submitted is recorded in the store (tasks/jobs.py), so a
rerun resumes it instead of paying again.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_stop = threading.Event()
_lock = threading.Lock()
_working: dict[str, str] = {}  # node id → provider, for nodes calling a provider now
_stopped_during: list[str] = []  # what was in flight when the stop was asked
_reason = ""


class Stopped(RuntimeError):
    """The run is stopping: this provider call was not started, or not waited for."""


def request(reason: str) -> None:
    """Stop starting provider calls in this process; the first reason is the one reported."""
    global _reason
    with _lock:
        if not _stop.is_set():
            _reason = reason
            _stopped_during[:] = [f"{node} ({provider})" for node, provider in _working.items()]
            _stop.set()


def requested() -> bool:
    return _stop.is_set()


def check() -> None:
    if _stop.is_set():
        raise Stopped(f"stopped ({_reason})")


def wait(seconds: float) -> None:
    """Sleep between polls, waking at once to stop."""
    if _stop.wait(seconds):
        check()


def in_flight() -> list[str]:
    """The nodes that were calling a provider when the stop was asked: "s001-clip (veo)"."""
    with _lock:
        return list(_stopped_during)


def reset() -> None:
    """Forget a stop: for a process that goes on to start another run (tests, a server)."""
    global _reason
    with _lock:
        _stop.clear()
        _stopped_during.clear()
        _reason = ""


def interruption_reason(interruption: BaseException) -> str:
    """What interrupted the run, as the user knows it: "Ctrl-C", "SIGTERM"."""
    if isinstance(interruption, KeyboardInterrupt):
        return "Ctrl-C"
    signal_number = getattr(interruption, "signal", None)  # Prefect's TerminationSignal
    if signal_number is not None:
        return signal.Signals(signal_number).name
    return type(interruption).__name__


def summary() -> str:
    """One line: why the run stopped, what was in flight, and that a rerun resumes it."""
    stopped = f"stopped ({_reason or 'Ctrl-C'})"
    working = in_flight()
    if not working:
        return f"{stopped} with nothing in flight; run the same command again to go on"
    return (f"{stopped} while making {', '.join(working)}: jobs they submitted are kept; run "
            "the same command again to resume them and reuse everything finished")


@contextmanager
def working(node: str, provider: str) -> Iterator[None]:
    """Mark `node` as calling `provider` while the block runs."""
    check()
    with _lock:
        _working[node] = provider
    try:
        yield
    finally:
        with _lock:
            _working.pop(node, None)
