"""Cost of a node from its usage and the price table (config/prices.yaml or REELFLOW_PRICES)."""

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


class PriceError(LookupError):
    """A provider or model has no entry in the price table."""


def price_table(path: Path | None = None) -> dict:
    if path is None:
        return load_table("prices")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def cost_usd(provider: str, model: str, usage: Mapping[str, float], table: dict) -> float:
    try:
        prices = table[provider][model]
    except KeyError:
        raise PriceError(f"no price for provider {provider!r} model {model!r}") from None
    total = 0.0
    for field, amount in usage.items():
        unit, per = UNITS[field]
        if amount and unit not in prices:
            raise PriceError(f"{provider}/{model} has no {unit} price but used {field}")
        total += prices.get(unit, 0.0) * amount / per
    return round(total, 6)
