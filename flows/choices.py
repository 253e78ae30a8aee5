"""The choices a run form offers, read from config/: they become select boxes in the UI."""

from __future__ import annotations

from enum import Enum

from config.catalog import styles
from config.settings import profile_path

StyleName = Enum("StyleName", {name: name for name in sorted(styles())}, type=str)
ProfileName = Enum("ProfileName", {path.stem: path.stem for path in
                                   sorted(profile_path("local").parent.glob("*.yaml"))}, type=str)
