"""Per-provider concurrency slots and the --max-cost ledger."""

from __future__ import annotations

import pytest

from config.settings import load_settings
from tasks.budget import BudgetExceeded, Ledger
from tasks.nodes import provider_slot


def test_a_provider_gets_no_more_slots_than_configured(workspace, monkeypatch):
    monkeypatch.setenv("REELFLOW_PROVIDER_CONCURRENCY", '{"slow-provider": 2}')
    slot = provider_slot(load_settings(), "slow-provider")
    assert slot.acquire(blocking=False) and slot.acquire(blocking=False)
    assert not slot.acquire(blocking=False)  # a third call waits
    slot.release()
    assert slot.acquire(blocking=False)


def test_the_ledger_refuses_a_node_that_would_pass_the_limit():
    ledger = Ledger(limit=1.00)
    ledger.reserve("s001-clip", 0.60)
    with pytest.raises(BudgetExceeded, match="s002-clip would cost"):
        ledger.reserve("s002-clip", 0.50)  # 0.60 committed + 0.50 > 1.00
    ledger.settle(0.60, 0.40)  # it cost less than expected
    ledger.reserve("s002-clip", 0.50)  # 0.40 spent + 0.50 fits
    assert (ledger.spent, ledger.reserved) == (pytest.approx(0.40), pytest.approx(0.50))


def test_no_limit_never_refuses():
    Ledger(limit=None).reserve("plan", 1e9)
