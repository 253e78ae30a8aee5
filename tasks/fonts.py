"""Caption fonts: where they are installed, and which family draws each character.

libass reads the fonts from one folder (`fontsdir`) and, without fontconfig, never falls back
from the family a caption names to another one: a glyph the family lacks is drawn as a box. So
every run of caption characters names a family whose character map has them.

The files come from pinned npm packages (config/fonts/package.json, bold only: captions are
bold); `make install` runs `npm ci` and then `python -m tasks.fonts NODE_MODULES`, which copies
the files named here into FONTS_DIR, and the offline keyframes' own typefaces into
TYPEFACES_DIR. Nothing is downloaded at run time.
"""

from __future__ import annotations

import shutil
import sys
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont

from tasks.ffmpeg import MediaError

SHARE = Path(sys.prefix) / "share" / "reelflow"
FONTS_DIR = SHARE / "fonts"  # the virtualenv's; nothing else is in it
TYPEFACES_DIR = SHARE / "typefaces"  # the keyframes' own (TYPEFACES): libass never loads them
LICENSES_DIR = SHARE / "font-licenses"  # outside FONTS_DIR: libass tries to load every file there


@dataclass(frozen=True)
class FontFiles:
    """One family: the npm package it comes from and its files there (subsets of one font)."""

    key: str
    package: str
    files: tuple[str, ...]
    text: bool = True  # False: the emoji font, whose digits and signs text should not use


def _bold(prefix: str, *subsets: str) -> tuple[str, ...]:
    return tuple(f"{prefix}-{subset}-700-normal.woff" for subset in subsets)


# In order of preference: text fonts before the emoji font, which also has digits, '#' and '©'.
# Noto Sans' eight subsets stay under libass's ten faces per family.
FAMILIES = (
    FontFiles("sans", "@fontsource/noto-sans",
              _bold("noto-sans", "latin", "latin-ext", "greek", "greek-ext", "cyrillic",
                    "cyrillic-ext", "vietnamese", "devanagari")),
    FontFiles("arabic", "@fontsource/noto-sans-arabic", _bold("noto-sans-arabic", "arabic")),
    FontFiles("hebrew", "@fontsource/noto-sans-hebrew", _bold("noto-sans-hebrew", "hebrew")),
    FontFiles("thai", "@fontsource/noto-sans-thai", _bold("noto-sans-thai", "thai")),
    FontFiles("sc", "@fontsource/noto-sans-sc", _bold("noto-sans-sc", "chinese-simplified")),
    FontFiles("jp", "@fontsource/noto-sans-jp", _bold("noto-sans-jp", "japanese")),
    FontFiles("kr", "@fontsource/noto-sans-kr", _bold("noto-sans-kr", "korean")),
    FontFiles("emoji", "@fontsource/noto-emoji", _bold("noto-emoji", "emoji"), text=False),
)
# Typefaces the offline keyframes set their on-screen text in (a style's `typeface`), never
# captions: a character one lacks is drawn by the caption family that has it. "sans" is the
# caption family itself.
TYPEFACES = (
    FontFiles("serif", "@fontsource/noto-serif",
              _bold("noto-serif", "latin", "latin-ext", "greek", "greek-ext", "cyrillic",
                    "cyrillic-ext", "vietnamese")),
    FontFiles("mono", "@fontsource/noto-sans-mono",
              _bold("noto-sans-mono", "latin", "latin-ext", "greek", "greek-ext", "cyrillic",
                    "cyrillic-ext", "vietnamese")),
)
# Han characters are drawn the way the storyboard's language writes them, Chinese otherwise.
# The Korean file has Hangul but no Hanja: Korean draws them as Japanese does.
CJK_ORDER = {"ja": ("jp", "sc", "kr"), "ko": ("kr", "jp", "sc")}
CJK = ("sc", "jp", "kr")


@dataclass(frozen=True)
class Family:
    name: str  # as libass matches it: the files' own family name
    # Each code point the files map to a glyph: the glyph's advance in font sizes. libass sizes
    # a font so that its Windows ascent plus descent is the font size.
    advances: Mapping[int, float]
    text: bool
    files: Mapping[int, Path]  # each code point: the file (one subset) whose glyph draws it

    def width(self, char: str) -> float:
        """About how wide `char` is drawn (in font sizes): its advance, without shaping."""
        return self.advances.get(ord(char), 0.0)


@cache
def family(key: str) -> Family:
    """The installed family `key` (one of FAMILIES or TYPEFACES), read once from its files."""
    spec = next(spec for spec in (*FAMILIES, *TYPEFACES) if spec.key == key)
    folder = _folder(spec)
    names, advances, files = set(), {}, {}
    for file in spec.files:
        path = folder / file
        if not path.is_file():
            raise MediaError(f"font {file} is not installed in {folder}: run `make install`")
        font = TTFont(path, lazy=True)
        names.add(font["name"].getDebugName(1))
        size = font["OS/2"].usWinAscent + font["OS/2"].usWinDescent
        metrics = font["hmtx"].metrics
        cmap = font.getBestCmap()
        advances.update((point, metrics[glyph][0] / size) for point, glyph in cmap.items())
        files.update(dict.fromkeys(cmap, path))
    name, = names  # subsets of one font share its family name
    return Family(name, advances, spec.text, files)


def _folder(spec: FontFiles) -> Path:
    return TYPEFACES_DIR if spec in TYPEFACES else FONTS_DIR


def default_family() -> str:
    """The family the caption style names: the first run needs no override when it is this."""
    return family(FAMILIES[0].key).name


@cache
def _order(language: str) -> tuple[Family, ...]:
    keys = [spec.key for spec in FAMILIES if spec.key not in CJK]
    keys[-1:-1] = CJK_ORDER.get(language.split("-")[0].lower(), CJK)  # before the emoji font
    return tuple(family(key) for key in keys)


def families(text: str, language: str, typeface: str = "sans") -> list[Family]:
    """For each character of `text`, the family that draws it; `typeface` ("sans" or one of
    TYPEFACES) is preferred to every caption family.

    A character gets the first family (in order of preference) that has it, except that it
    stays in the run before it when that family has it and it is a combining mark, joiner or
    variation selector (they belong to their base), or neither a letter nor in the emoji font's
    run (a space, punctuation or digit between words of one script): runs stay whole. (The
    emoji font's space is as wide as an emoji, and its digits are not the text's.)
    A character no family has stays in the current run: it is drawn as a box.
    """
    order = _order(language)
    if typeface != FAMILIES[0].key:
        order = (family(typeface), *order)
    out: list[Family] = []
    current: Family | None = None
    for char in text:
        point, kind = ord(char), unicodedata.category(char)
        stays = current is not None and point in current.advances and (
            kind[0] == "M" or kind == "Cf" or (kind[0] != "L" and current.text))
        if not stays:
            current = next((f for f in order if point in f.advances), current or order[0])
        out.append(current)
    return out


def install(node_modules: Path) -> None:
    """Copy the families' files (and each package's licence) out of an `npm ci` tree."""
    for folder in (FONTS_DIR, TYPEFACES_DIR):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    LICENSES_DIR.mkdir(parents=True, exist_ok=True)
    for spec in (*FAMILIES, *TYPEFACES):
        package = node_modules / spec.package
        for file in spec.files:
            shutil.copyfile(package / "files" / file, _folder(spec) / file)
        shutil.copyfile(package / "LICENSE", LICENSES_DIR / f"{package.name}.LICENSE")


if __name__ == "__main__":
    install(Path(sys.argv[1]))
