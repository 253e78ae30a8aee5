"""Rich progress bars for a render: one bar per node kind, advanced as nodes finish."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tasks import progress
from tasks.nodes import NodeOutcome

LABELS = {"plan": "storyboard", "tts": "voices", "image": "keyframes", "clip": "clips",
          "compose": "compose"}


@contextmanager
def node_progress(console: Console, *, scenes: int | None, planning: bool) -> Iterator[None]:
    """Show progress while the block renders; `scenes` may be unknown until planning is done."""
    bars = Progress(TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
                    console=console, transient=False)
    totals = {"tts": scenes, "image": scenes, "clip": scenes, "compose": 1}
    if planning:
        totals = {"plan": 1, **totals}
    ids = {kind: bars.add_task(LABELS[kind], total=total, last="") for kind, total in totals.items()}
    counts = dict.fromkeys(ids, 0)

    def advance(outcome: NodeOutcome) -> None:
        if outcome.kind not in ids:
            return
        counts[outcome.kind] += 1
        bars.update(ids[outcome.kind], completed=counts[outcome.kind],
                    last=f"{outcome.id} {outcome.status}")

    with bars, progress.listening(advance):
        yield
