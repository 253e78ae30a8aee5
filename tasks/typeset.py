"""Text set large in a box: wrapped into balanced lines at the largest size that fits, each run
of characters drawn in the font file that has them (a style's typeface first, then the caption
families of tasks/fonts.py), shaped by Pillow's libraqm (Arabic joins, Indic clusters) and
laid right to left where the line's first strong character is."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import ImageDraw, ImageFont

from tasks import fonts
from tasks.language import KANA, scripts
from tasks.reading import read_line

REFERENCE_SIZE = 100  # widths are measured once at this size and scale with it
LEADING = 1.18  # line to line, in font sizes
ASCENT, DESCENT = 1.0, 0.3  # room kept above and below a line's baseline (accents, CJK)
MAX_LINES = 4


@cache
def font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.RAQM)


def language_of(text: str) -> str:
    """The language whose Han forms a text wants: Japanese with kana, Korean with Hangul."""
    written = scripts(text)
    if KANA & set(written):
        return "ja"
    return "ko" if "Hangul" in written else ""


def runs(line: str, typeface: str) -> list[tuple[str, Path]]:
    """`line` cut into runs of characters one font file draws, in logical order."""
    families = fonts.families(line, language_of(line), typeface)
    out: list[tuple[str, Path]] = []
    for char, family in zip(line, families):
        path = family.files.get(ord(char)) or next(iter(family.files.values()))
        if out and (out[-1][1] == path or unicodedata.category(char)[0] == "M"):
            out[-1] = (out[-1][0] + char, out[-1][1])
        else:
            out.append((char, path))
    return out


def right_to_left(line: str) -> bool:
    for char in line:
        kind = unicodedata.bidirectional(char)
        if kind in ("L", "R", "AL"):
            return kind != "L"
    return False


def width(line: str, typeface: str, size: int = REFERENCE_SIZE) -> float:
    return sum(font(path, size).getlength(text) for text, path in runs(line, typeface))


def tokens(text: str) -> list[tuple[str, str]]:
    """Where a line may break: (what joins a token to the one before, the token). The words
    captions use (tasks/reading.py): split at spaces, and in Chinese, Japanese and Thai where
    their segmenters find words; punctuation stays with its word."""
    words = read_line(text, language_of(text)).words
    return [(text[before.last:word.first] if before else "", text[word.first:word.last])
            for before, word in zip((None, *words), words)]


@dataclass(frozen=True)
class Setting:
    lines: tuple[str, ...]
    size: int
    typeface: str

    @property
    def height(self) -> float:
        return ((len(self.lines) - 1) * LEADING + ASCENT + DESCENT) * self.size

    def line_width(self, line: str) -> float:
        return width(line, self.typeface, self.size)


def fit(text: str, typeface: str, box_width: float, box_height: float,
        max_size: float) -> Setting:
    """The largest setting of `text` in a box: the best of 1..MAX_LINES balanced lines."""
    parts = tokens(text)
    count = len(parts)
    # Width, at the reference size, of the line made of tokens i..j-1.
    spans = {(i, j): width(_join(parts[i:j]), typeface) / REFERENCE_SIZE
             for i in range(count) for j in range(i + 1, count + 1)}
    best: Setting | None = None
    for lines in range(1, min(count, MAX_LINES) + 1):
        breaks = _balanced(spans, count, lines)
        widest = max(spans[pair] for pair in zip(breaks, breaks[1:]))
        size = int(min(max_size, box_width / max(widest, 1e-6),
                       box_height / ((lines - 1) * LEADING + ASCENT + DESCENT)))
        # Another line must buy a clearly larger size: fewer lines read faster.
        if best is None or size > best.size * 1.1:
            best = Setting(tuple(_join(parts[a:b]) for a, b in zip(breaks, breaks[1:])),
                           max(size, 1), typeface)
    return best


def _join(parts: list[tuple[str, str]]) -> str:
    return "".join((joiner if index else "") + token for index, (joiner, token)
                   in enumerate(parts))


def _balanced(spans: dict, count: int, lines: int) -> list[int]:
    """Break points (0, ..., count) into `lines` lines whose widest line is narrowest."""
    # best[k][j]: (widest line, breaks) setting the first j tokens in k lines.
    best = {(0, 0): (0.0, [0])}
    for k in range(1, lines + 1):
        for j in range(k, count + 1):
            options = [(max(best[k - 1, i][0], spans[i, j]), best[k - 1, i][1] + [j])
                       for i in range(k - 1, j) if (k - 1, i) in best]
            best[k, j] = min(options, key=lambda option: option[0])
    return best[lines, count][1]


def draw(canvas: ImageDraw.ImageDraw, setting: Setting, left: float, top: float,
         box_width: float, align: str, fill) -> None:
    """Draw `setting` with its first line's top at `top`; `align` "centre" or "start" (the
    left edge, or the right one for a right-to-left line)."""
    for index, line in enumerate(setting.lines):
        pieces = runs(line, setting.typeface)
        widths = [font(path, setting.size).getlength(text) for text, path in pieces]
        rtl = right_to_left(line)
        total = sum(widths)
        if align == "centre":
            x = left + (box_width - total) / 2
        else:
            x = left + box_width - total if rtl else left
        baseline = top + (ASCENT + index * LEADING) * setting.size
        order = list(zip(pieces, widths))
        for (text, path), run_width in reversed(order) if rtl else order:
            canvas.text((x, baseline), text, fill=fill, font=font(path, setting.size),
                        anchor="ls")
            x += run_width
