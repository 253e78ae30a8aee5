"""Checks before anything is spent: every configured provider has its key, and the storyboard's
estimated cost (nodes already stored count 0) fits --max-cost."""

from __future__ import annotations

from cache import open_store
from cache.store import Artifact
from config.secrets import secret
from config.settings import Settings
from tasks.budget import BudgetExceeded
from tasks.graph import KINDS, preferred, video_graph
from tasks.nodes import expected_cost, provider_chain
from tasks.providers.base import Modality
from tasks.storyboard import Storyboard


def check_keys(settings: Settings) -> None:
    """Raise MissingSecretError naming the first key a configured provider lacks."""
    for modality in Modality:
        for provider in provider_chain(settings, modality):
            if provider.needs_key:
                secret(provider.needs_key)


class _NotMadeYet(dict):
    """The outputs of a node that is not stored: any output, with a digest no blob has."""

    def __missing__(self, name: str) -> Artifact:
        return Artifact(digest="0" * 64, media_type="", size=0)


def estimate_usd(storyboard: Storyboard, settings: Settings) -> float:
    """What rendering `storyboard` with the preferred providers would cost now: the graph
    walked in order, each node priced unless the store has it."""
    store = open_store(settings.store)
    made: dict[str, dict] = {}
    total = 0.0
    for step in video_graph(storyboard):
        kind = KINDS[step.kind]
        upstream = {needed: made[needed] for needed in step.needs}
        node, _ = kind.describe(step, storyboard, settings, preferred(settings, kind), upstream)
        known = all(not isinstance(outputs, _NotMadeYet) for outputs in upstream.values())
        record = store.lookup(node.key) if known else None
        made[step.id] = record.outputs if record else _NotMadeYet()
        if record is None and kind.modality is not None:
            total += expected_cost(settings, node)
    return round(total, 6)


def check_budget(storyboard: Storyboard, settings: Settings) -> None:
    if settings.max_cost is None:
        return
    estimate = estimate_usd(storyboard, settings)
    if estimate > settings.max_cost:
        raise BudgetExceeded(f"max-cost: this render is estimated at ${estimate:.4f}, over the "
                             f"limit of ${settings.max_cost:.4f}; nothing was generated")
