"""Per-provider concurrency slots and the --max-cost ledger: in memory outside a flow run, on
the run's Prefect server inside one, where every process running the run's tasks reserves."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from config.settings import load_settings
from tasks.budget import BudgetExceeded, Ledger, RunLedger
from tasks.nodes import provider_slot


def test_a_provider_gets_no_more_slots_than_configured(workspace, monkeypatch):
    monkeypatch.setenv("REELFLOW_PROVIDER_CONCURRENCY", '{"slow-provider": 2}')
    slot = provider_slot(load_settings(), "slow-provider")
    assert slot.acquire(blocking=False) and slot.acquire(blocking=False)
    assert not slot.acquire(blocking=False)  # a third call waits
    slot.release()
    assert slot.acquire(blocking=False)


@pytest.fixture(params=["in memory", "on the run's server"])
def new_ledger(request) -> Iterator[Callable[[float], Ledger | RunLedger]]:
    """Make a ledger of either kind: both keep the same promises."""
    with ExitStack() as opened:
        def make(limit: float) -> Ledger | RunLedger:
            if request.param == "in memory":
                return Ledger(limit)
            request.getfixturevalue("prefect_api_url")
            return opened.enter_context(RunLedger(str(uuid.uuid4()), limit).opened())
        yield make


def test_the_ledger_refuses_a_node_that_would_pass_the_limit(new_ledger):
    ledger = new_ledger(1.00)
    ledger.reserve("s001-clip", 0.60)
    with pytest.raises(BudgetExceeded, match="s002-clip would cost"):
        ledger.reserve("s002-clip", 0.50)  # 0.60 committed + 0.50 > 1.00
    ledger.settle(0.60, 0.40)  # it cost less than expected
    ledger.reserve("s002-clip", 0.50)  # 0.40 spent + 0.50 fits
    with pytest.raises(BudgetExceeded, match=r"with \$0\.9000 spent or committed, past the "
                                             r"limit of \$1\.0000"):
        ledger.reserve("s003-clip", 0.11)
    ledger.reserve("s003-clip", 0.10)  # exactly up to the limit


def test_a_node_that_cost_more_than_reserved_leaves_no_room_past_the_limit(new_ledger):
    ledger = new_ledger(1.00)
    ledger.reserve("s001-clip", 0.50)
    ledger.settle(0.50, 1.20)  # the provider billed more than it was expected to
    with pytest.raises(BudgetExceeded, match="s002-clip would cost"):
        ledger.reserve("s002-clip", 0.01)
    ledger.reserve("s002-tts", 0.0)  # a free node spends nothing


def test_no_limit_never_refuses():
    Ledger(limit=None).reserve("plan", 1e9)


def test_a_run_ledger_is_deleted_with_its_block_and_a_missing_one_refuses(prefect_api_url):
    ledger = RunLedger(str(uuid.uuid4()), 1.00)
    with ledger.opened():
        ledger.reserve("s001-clip", 0.25)
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_global_concurrency_limit_by_name(ledger.name)
    # A process whose Prefect server is not the run's must not spend unbounded.
    with pytest.raises(BudgetExceeded, match="does not hold the run's ledger; set PREFECT_API_URL"):
        ledger.reserve("s002-clip", 0.25)


def test_a_limit_past_what_a_server_counts_is_counted_coarser_never_higher(prefect_api_url):
    ledger = RunLedger(str(uuid.uuid4()), 10_000.00)  # 1e10 micro-dollars: past 32 bits
    assert ledger.limit_slots <= 2**31 - 1
    with ledger.opened():
        ledger.reserve("s001-clip", 9_999.99)
        with pytest.raises(BudgetExceeded):
            ledger.reserve("s002-clip", 0.02)


PRICE, LIMIT = 0.07, 1.00  # 14 nodes fit: $0.98


def reserve_until_refused(ledger: RunLedger, start) -> int:
    """In a process of its own: four threads each reserve and pay PRICE until refused. How many
    nodes this process was granted."""
    start.wait()  # every process starts at once

    def one_thread(_) -> int:
        granted = 0
        while True:
            try:
                ledger.reserve("node", PRICE)
            except BudgetExceeded:
                return granted
            ledger.settle(PRICE, PRICE)
            granted += 1

    with ThreadPoolExecutor(4) as threads:
        return sum(threads.map(one_thread, range(4)))


def test_processes_reserving_against_one_run_ledger_never_pass_its_limit(prefect_api_url,
                                                                         monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)  # what the processes start with
    ledger = RunLedger(str(uuid.uuid4()), LIMIT)
    spawn = multiprocessing.get_context("spawn")
    with ledger.opened(), spawn.Manager() as manager, \
            ProcessPoolExecutor(2, mp_context=spawn) as processes:
        start = manager.Barrier(2)
        granted = list(processes.map(reserve_until_refused, [ledger] * 2, [start] * 2))
        with get_client(sync_client=True) as client:
            occupied = client.read_global_concurrency_limit_by_name(ledger.name).active_slots

    assert sum(granted) == 14  # every node that fits, and not one more
    assert occupied == 980_000  # micro-dollars: $0.98
