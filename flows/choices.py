"""The choices a run form offers, read from config/: they become select boxes in the UI."""

from __future__ import annotations

import sys
from enum import Enum

from config.bible import BibleError, load_profiles
from config.catalog import StyleError, styles
from config.settings import profile_path
from tasks.storyboard import DirectorLook

try:  # read on import by every command and the UI's forms
    StyleName = Enum("StyleName", {name: name for name in sorted(styles())}, type=str)
    DirectorName = Enum("DirectorName", {name: name for name in
                                         sorted(load_profiles(DirectorLook))}, type=str)
except (StyleError, BibleError) as error:
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(2) from None
ProfileName = Enum("ProfileName", {path.stem: path.stem for path in
                                   sorted(profile_path("local").parent.glob("*.yaml"))}, type=str)
