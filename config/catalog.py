"""Read the YAML tables shipped in config/: styles, prices and profiles."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent


@cache
def load_table(name: str) -> dict:
    """The parsed `config/<name>.yaml`; read once per process."""
    with open(CONFIG_DIR / f"{name}.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def styles() -> dict[str, dict]:
    return load_table("styles")
