"""The CLI's progress display: a bar per node kind, told by the flow's process as each node
finishes, every node exactly once (tests/test_dask.py: the same with tasks on Dask workers)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from rich.console import Console

from flows.progress_bars import node_progress
from flows.video import make_video
from tasks import progress
from tasks.compose import segments
from tasks.graph import video_graph
from tasks.storyboard import Storyboard

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")

BAR = re.compile(r"^(?P<label>\w+)\s.*?(?P<done>\d+)/(?P<total>\d+)", re.MULTILINE)


def made_with_progress(make: Callable[[], object]) -> tuple[dict[str, tuple[int, int]], list]:
    """Run `make()` (a make_video call) under the CLI's progress display: each bar's
    (done, total) as it was left, and the node events that reached this process."""
    shown, events = io.StringIO(), []
    with node_progress(Console(file=shown, width=120), planning=True, sync_lips=True), \
            progress.listening(events.append):
        make()
    bars = {bar["label"]: (int(bar["done"]), int(bar["total"]))
            for bar in BAR.finditer(shown.getvalue())}
    return bars, events


def check_every_node_shown_once(bars: dict[str, tuple[int, int]], events: list) -> None:
    storyboard = next(event for event in events if isinstance(event, Storyboard))
    nodes = [event.id for event in events if not isinstance(event, Storyboard)]
    assert sorted(nodes) == sorted(["plan", *(step.id for step in video_graph(storyboard))])
    count = len(segments(storyboard))
    assert bars == {"storyboard": (1, 1), "voices": (3, 3), "keyframes": (3, 3), "clips": (3, 3),
                    "segments": (count, count), "compose": (1, 1)}


def test_the_progress_display_shows_every_node_once_with_threads():
    bars, events = made_with_progress(lambda: make_video(topic="tide pools", scenes=3))
    check_every_node_shown_once(bars, events)
