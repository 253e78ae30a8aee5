"""Rich progress bars for a render: one bar per node kind, advanced as nodes finish."""

from __future__ import annotations

from collections.abc import Iterator
from collections import Counter
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tasks import progress
from tasks.graph import KINDS, video_graph
from tasks.nodes import NodeOutcome
from tasks.storyboard import Storyboard


@contextmanager
def node_progress(console: Console, *, planning: bool, sync_lips: bool) -> Iterator[None]:
    """Show progress while the block renders: a bar per node kind of the storyboard's graph,
    sized as soon as the storyboard is known (after planning, when there is a plan)."""
    bars = Progress(TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
                    console=console, transient=False)
    ids = {"plan": bars.add_task("storyboard", total=1, last="")} if planning else {}
    ids |= {kind.name: bars.add_task(kind.label, total=None, last="", visible=False)
            for kind in KINDS.values()}
    counts = dict.fromkeys(ids, 0)

    def sized(storyboard: Storyboard) -> None:
        totals = Counter(step.kind for step in video_graph(storyboard, sync_lips=sync_lips))
        for kind, total in totals.items():
            bars.update(ids[kind], total=total, visible=True)

    def advance(event: NodeOutcome | Storyboard) -> None:
        if isinstance(event, Storyboard):
            sized(event)
            return
        if event.kind not in ids:
            return
        counts[event.kind] += 1
        # A fallback shows as it happens; the summary's warnings count them all, with why.
        fallback = f" by {event.record.provider} (fallback)" if event.fallbacks else ""
        bars.update(ids[event.kind], completed=counts[event.kind], visible=True,
                    last=f"{event.id} {event.status}{fallback}")

    with bars, progress.listening(advance):
        yield
