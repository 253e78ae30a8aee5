"""Spending limits (--max-cost): one ledger per flow run that refuses a node whose expected cost
would take the run past its limit, before the provider is called.

A flow run's ledger is a Prefect global concurrency limit on the run's own server, its slots
counted in micro-dollars (what `cost_usd` rounds to, so the count is exact; coarser only for a
limit past $2147, where a Postgres-backed server's 32-bit count ends): reserving occupies
a node's expected cost, settling gives back what it did not spend, and what was spent stays
occupied until the run ends and its flow deletes the limit. The server grants slots in one
conditional UPDATE (only if they fit), so threads, Dask workers and other machines reserving at
once can never pass the limit together. Every process that runs a task of the run already
talks to that server (task states go there), whichever store backend holds the artifacts;
a ledger in the store would need a lock of its own per backend (flock locally, a
compare-and-swap on the object's generation in a bucket).

Outside a flow run (`reelflow plan`) there is one process: its ledger lives in memory.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

MICRO_USD = 1_000_000  # slots per dollar
MAX_SLOTS = 2**31 - 1  # a limit is a 32-bit integer on a Postgres-backed server
LOCKED = 423  # the server's answer when the slots asked for do not fit


class BudgetExceeded(RuntimeError):
    """Spending more would pass --max-cost. Not a provider failure: it never falls back."""


def refusal(node: str, expected: float, committed: float, limit: float) -> BudgetExceeded:
    """Why `node` may not spend `expected`, in the one wording both ledgers use."""
    return BudgetExceeded(f"max-cost: {node} would cost ${expected:.4f} with ${committed:.4f} "
                          f"spent or committed, past the limit of ${limit:.4f}")


@dataclass
class Ledger:
    """A ledger in this process's memory: for work outside a flow run."""

    limit: float | None
    spent: float = 0.0
    reserved: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reserve(self, node: str, expected: float) -> None:
        with self.lock:
            # A free node spends nothing, whatever the others spent.
            if (self.limit is not None and expected > 0
                    and self.spent + self.reserved + expected > self.limit + 1e-9):
                raise refusal(node, expected, self.spent + self.reserved, self.limit)
            self.reserved += expected

    def settle(self, expected: float, actual: float) -> None:
        with self.lock:
            self.reserved -= expected
            self.spent += actual


@dataclass(frozen=True)
class RunLedger:
    """A flow run's ledger on its Prefect server, shared by every process running its tasks.
    The flow holds it open (`opened`) while its tasks reserve and settle."""

    run: str
    limit: float

    @property
    def name(self) -> str:
        return f"reelflow-budget-{self.run}"

    @property
    def unit(self) -> float:
        """Dollars per slot: a micro-dollar, coarser only for a limit past MAX_SLOTS of them."""
        return max(1 / MICRO_USD, self.limit / MAX_SLOTS)

    def slots(self, usd: float) -> int:
        """`usd` in slots, rounded up: a cost never counts for less than it is."""
        return math.ceil(round(usd / self.unit, 3))  # round: 0.29 / 1e-6 is 289999.99999999994

    @property
    def limit_slots(self) -> int:
        return math.floor(round(self.limit / self.unit, 3))

    @contextmanager
    def opened(self) -> Iterator[RunLedger]:
        """Create the ledger on the server for the block, then delete it."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

        with get_client(sync_client=True) as client:
            # Spent money never decays, unlike a rate limit's slots.
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                name=self.name, limit=self.limit_slots,
                slot_decay_per_second=0.0))
        try:
            yield self
        finally:
            with get_client(sync_client=True) as client:
                client.delete_global_concurrency_limit_by_name(self.name)

    def reserve(self, node: str, expected: float) -> None:
        slots = self.slots(expected)
        if not slots:  # a free node spends nothing, whatever the others spent
            return
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            if slots > self.limit_slots:  # the server would refuse it as malformed
                raise self._refusal(client, node, expected)
            try:
                granted = client.increment_concurrency_slots([self.name], slots, "concurrency")
            except httpx.HTTPStatusError as error:
                if error.response.status_code != LOCKED:
                    raise
                raise self._refusal(client, node, expected) from None
            if not granted.json():  # the server holds no limit of that name
                raise BudgetExceeded(
                    f"max-cost: {node}: this process reports to a Prefect server ({client.api_url}) "
                    "that does not hold the run's ledger; set PREFECT_API_URL to the run's server")

    def settle(self, expected: float, actual: float) -> None:
        change = self.slots(actual) - self.slots(expected)
        if not change:
            return
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            if change < 0:
                # The server averages occupancy for Retry-After hints; nobody waits on a ledger.
                client.release_concurrency_slots([self.name], -change, occupancy_seconds=None)
            else:
                self._overspent(client, change)

    def _overspent(self, client, slots: int) -> None:
        """Charge what a node cost beyond its reservation. Past the limit, the ledger fills up to
        it: the money is spent whether or not it fits, and every later node is refused."""
        while slots > 0:
            try:
                client.increment_concurrency_slots([self.name], slots, "concurrency")
                return
            except httpx.HTTPStatusError as error:
                if error.response.status_code != LOCKED:
                    raise
            state = self._state(client)
            slots = min(slots, state.limit - state.active_slots)

    def _state(self, client):
        return client.read_global_concurrency_limit_by_name(self.name)

    def _refusal(self, client, node: str, expected: float) -> BudgetExceeded:
        return refusal(node, expected, self._state(client).active_slots * self.unit, self.limit)


_outside_runs: dict[float, Ledger] = {}  # by limit, for the life of this process
_outside_runs_lock = threading.Lock()


def ledger(limit: float | None) -> Ledger | RunLedger:
    """The ledger to reserve against: the flow run's, which every process running its tasks
    shares; outside a flow run, this process's."""
    from prefect.runtime import flow_run

    if limit is None:
        return Ledger(None)  # nothing to count
    if flow_run.id is not None:
        return RunLedger(flow_run.id, limit)
    with _outside_runs_lock:
        return _outside_runs.setdefault(limit, Ledger(limit))


@contextmanager
def run_ledger(limit: float | None) -> Iterator[None]:
    """Hold this flow run's ledger while the block runs; call it in the flow, around every
    task that may spend."""
    from prefect.runtime import flow_run

    if limit is None:
        yield
        return
    with RunLedger(flow_run.id, limit).opened():
        yield
