"""Cost of a node from its usage and the price table: config/prices.yaml, with the user's own
table (REELFLOW_PRICES) laid over it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from config.catalog import load_table

# Usage field → the price-table unit that charges it, and the divisor of that unit.
UNITS = {
    "characters": ("per_1k_characters", 1000),
    "images": ("per_image", 1),
    "video_seconds": ("per_video_second", 1),
    "tokens": ("per_1k_tokens", 1000),
}
# A provider or a model that costs nothing, in one line: `openai-compatible: free`.
FREE = "free"


class PriceError(LookupError):
    """A provider or model has no entry in the price table."""


def price_table(path: Path | None = None) -> dict:
    """The shipped table with the user's table at `path` laid over it: a provider the user
    prices `free` replaces the shipped entry; otherwise each model the user prices replaces
    that model's entry, and every other shipped price stays. Raises ValueError for a user's
    table that cannot be read or is not a price table."""
    shipped = load_table("prices")
    if path is None:
        return shipped
    table = dict(shipped)
    for provider, models in _user_table(path).items():
        shipped_models = shipped.get(provider)
        table[provider] = (models if models == FREE or not isinstance(shipped_models, dict)
                           else {**shipped_models, **models})
    return table


def _user_table(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            table = yaml.safe_load(handle) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    units = sorted(unit for unit, _ in UNITS.values())

    def refuse(where: str, what: str):
        return ValueError(f"{path}: {where}: {what}")

    if not isinstance(table, dict):
        raise refuse("the table", "must map provider names to their models' prices")
    for provider, models in table.items():
        if models == FREE:
            continue
        if not isinstance(models, dict):
            raise refuse(provider, f"give its models' prices, or {FREE!r}")
        for model, prices in models.items():
            if prices == FREE:
                continue
            if not isinstance(prices, dict):
                raise refuse(f"{provider}/{model}", f"give its prices by unit, or {FREE!r}")
            for unit, usd in prices.items():
                if unit not in units:
                    raise refuse(f"{provider}/{model}",
                                 f"unknown unit {unit!r} (valid: {', '.join(units)})")
                if isinstance(usd, bool) or not isinstance(usd, (int, float)) or usd < 0:
                    raise refuse(f"{provider}/{model}/{unit}", "must be a number of USD, 0 or more")
    return table


def cost_usd(provider: str, model: str, usage: Mapping[str, float], table: dict) -> float:
    try:
        prices = table[provider]
        prices = prices if prices == FREE else prices[model]
    except KeyError:
        raise PriceError(f"no price for provider {provider!r} model {model!r}") from None
    if prices == FREE:
        return 0.0
    total = 0.0
    for field, amount in usage.items():
        unit, per = UNITS[field]
        if amount and unit not in prices:
            raise PriceError(f"{provider}/{model} has no {unit} price but used {field}")
        total += prices.get(unit, 0.0) * amount / per
    return round(total, 6)
