"""Read the YAML tables shipped in config/: styles, prices and profiles."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).parent


@cache
def load_table(name: str) -> dict:
    """The parsed `config/<name>.yaml`; read once per process."""
    with open(CONFIG_DIR / f"{name}.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# What a style may name; tasks/cards.py and tasks/fonts.py draw them.
STYLE_TYPEFACES = ("sans", "serif", "mono")
STYLE_LAYOUTS = ("centred", "left", "number", "split")
STYLE_PATTERNS = ("bands", "dots", "rings", "blocks", "grid")


_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class StyleError(ValueError):
    """config/styles.yaml names something the offline look cannot draw."""


@cache
def styles() -> dict[str, dict]:
    """config/styles.yaml, each style checked; a bad one raises StyleError in one line."""
    table = load_table("styles")
    for name, style in table.items():
        _check_style(name, style)
    return table


def _check_style(name: str, style: dict) -> None:
    def refuse(field: str, what: str) -> StyleError:
        return StyleError(f"config/styles.yaml: {name}.{field}: {what}")

    if not isinstance(style, dict):
        raise StyleError(f"config/styles.yaml: {name}: must be a mapping of fields")
    palette = style.get("palette")
    if not isinstance(palette, list) or len(palette) < 2 or not all(
            isinstance(c, str) and _COLOUR.fullmatch(c) for c in palette):
        raise refuse("palette", "must list 2 or more #rrggbb colours")
    accent = style.get("accent")
    if accent is not None and not (isinstance(accent, str) and _COLOUR.fullmatch(accent)):
        raise refuse("accent", "must be a #rrggbb colour")
    if style.get("typeface") not in STYLE_TYPEFACES:
        raise refuse("typeface", f"must be one of {', '.join(STYLE_TYPEFACES)}")
    for field, known in (("layouts", STYLE_LAYOUTS), ("patterns", STYLE_PATTERNS)):
        value = style.get(field)
        if not isinstance(value, list) or not value or not set(value) <= set(known):
            raise refuse(field, f"must list some of {', '.join(known)}")
    # Imported here: tasks.storyboard reads this module's styles() to check its own.
    from tasks.storyboard import CameraMotion
    motions = style.get("motions")
    if not isinstance(motions, list) or not motions or not all(
            m in CameraMotion._value2member_map_ for m in motions):
        raise refuse("motions", f"must list some of {', '.join(m.value for m in CameraMotion)}")
    if not isinstance(style.get("prompt"), str):
        raise refuse("prompt", "must be text")
