"""Spending limits (--max-cost): a per-run ledger that refuses a node whose expected cost would
take the run past its limit, before the provider is called."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


class BudgetExceeded(RuntimeError):
    """Spending more would pass --max-cost. Not a provider failure: it never falls back."""


@dataclass
class Ledger:
    limit: float | None
    spent: float = 0.0
    reserved: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, node: str, expected: float) -> None:
        with self.lock:
            if self.limit is not None and self.spent + self.reserved + expected > self.limit + 1e-9:
                raise BudgetExceeded(
                    f"max-cost: {node} would cost ${expected:.4f} with ${self.spent:.4f} spent "
                    f"and ${self.reserved:.4f} committed, past the limit of ${self.limit:.4f}")
            self.reserved += expected

    def settle(self, expected: float, actual: float) -> None:
        with self.lock:
            self.reserved -= expected
            self.spent += actual


_ledgers: dict[str, Ledger] = {}
_ledgers_lock = threading.Lock()


def ledger(limit: float | None) -> Ledger:
    """This flow run's ledger (one per run, shared by its task threads)."""
    from prefect.runtime import flow_run

    run = str(flow_run.id or "outside-a-flow")
    with _ledgers_lock:
        if run not in _ledgers:
            _ledgers[run] = Ledger(limit)
        return _ledgers[run]
