"""The offline keyframe's design: a scene's on-screen text set large in the style's typeface
over a flat, patterned background from its palette, with a pictogram when the text names
something the emoji font draws. The layout and the pattern are picked by the request's own
random generator, from the families the style allows; the text always stays inside the
zone that Ken Burns motion keeps on screen and clear of the captions."""

from __future__ import annotations

import math
import random
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageColor, ImageDraw

from config.catalog import load_table
from tasks import fonts, typeset
from tasks.providers.kenburns import MAX_PAN_ZOOM
from tasks.subtitles import caption_top

NUMBER = re.compile(r"\d+(?:[.,:]\d+)*\s?[%°×x]?")
SUPERSAMPLE = 2  # shapes are drawn this much larger and reduced: smooth edges

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]  # left, top, right, bottom


def text_zone(width: int, height: int) -> Box:
    """Where text may go: what stays on screen and above the captions under any Ken Burns
    move (a pan shows a window of the picture enlarged up to MAX_PAN_ZOOM times, anywhere
    along its travel; a zoom enlarges it less, about its centre)."""
    travel = MAX_PAN_ZOOM - 1
    edge_x, edge_y = 0.05 * width, 0.06 * height  # platform UI and the screen's rounded corners
    left = (travel * width + edge_x) / MAX_PAN_ZOOM
    top = (travel * height + edge_y) / MAX_PAN_ZOOM
    bottom = caption_top(width, height) / MAX_PAN_ZOOM
    return left, top, width - left, bottom


@dataclass(frozen=True)
class Look:
    """A style's design choices (config/styles.yaml)."""

    palette: tuple[Color, ...]
    typeface: str
    layouts: tuple[str, ...]
    patterns: tuple[str, ...]
    accent: Color | None = None  # never a ground; without it, picked from the palette per card

    @classmethod
    def of(cls, style: dict) -> Look:
        accent = style.get("accent")
        return cls(tuple(ImageColor.getrgb(c) for c in style["palette"]), style["typeface"],
                   tuple(style["layouts"]), tuple(style["patterns"]),
                   ImageColor.getrgb(accent) if accent else None)


def luminance(color: Color) -> float:
    def linear(channel: int) -> float:
        value = channel / 255
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4
    red, green, blue = map(linear, color)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(one: Color, other: Color) -> float:
    """WCAG contrast ratio, 1 to 21."""
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def draw_card(text: str, look: Look, rng: random.Random, width: int, height: int,
              prompt: str = "", ground: Color | None = None) -> tuple[Image.Image, Box | None]:
    """The keyframe, and the box its text was set in (None without text: then the pictogram
    of the prompt, if any, alone). `ground`, a colour of the palette: the card's, instead of
    one picked at random."""
    text = " ".join(text.split())
    number = NUMBER.search(text)
    plain = [layout for layout in look.layouts if layout != "number"]
    layout = "number" if number and "number" in look.layouts else rng.choice(plain or ["centred"])
    ground, tone, accent, ink = _colors(look, rng, ground)
    canvas = _background(rng.choice(look.patterns), ground, tone, accent, rng, width, height)
    zone = text_zone(width, height)
    draw = ImageDraw.Draw(canvas)
    if not text:
        picture = pictogram(prompt.split("\n")[0])
        if picture:
            left, top, right, bottom = zone
            _draw_pictogram(draw, picture, ((left + right) / 2, (top + bottom) / 2),
                            (right - left) * 0.6, accent)
        return canvas, None
    box = {"centred": _centred, "left": _left, "number": _number, "split": _split}[layout](
        draw, text, number, pictogram(text), look.typeface, zone, ink, accent)
    return canvas, box


def _colors(look: Look, rng: random.Random,
            ground: Color | None) -> tuple[Color, Color, Color, Color]:
    """Ground, a tone near it for its pattern, an accent, and ink that reads on the ground."""
    ground = ground or rng.choice(look.palette)
    others = [c for c in look.palette if c != ground] or [ground]
    ink = max(others + [(255, 255, 255), (17, 17, 17)], key=lambda c: contrast(c, ground))
    tone = min(others, key=lambda c: abs(luminance(c) - luminance(ground)))
    if contrast(tone, ground) > 1.6 or math.dist(tone, ground) > 80:
        # Too loud behind text: a shade of the ground instead.
        tone = _mix(ground, ink, 0.12)
    accent = look.accent or max(others, key=lambda c: _saturation(c) * min(contrast(c, ground), 3))
    return ground, tone, accent, ink


def _mix(one: Color, other: Color, amount: float) -> Color:
    return tuple(round(a + (b - a) * amount) for a, b in zip(one, other))


def _saturation(color: Color) -> float:
    high, low = max(color), min(color)
    return (high - low) / high if high else 0.0


# Backgrounds ---------------------------------------------------------------------------


def _background(pattern: str, ground: Color, tone: Color, accent: Color, rng: random.Random,
                width: int, height: int) -> Image.Image:
    size = (width * SUPERSAMPLE, height * SUPERSAMPLE)
    canvas = Image.new("RGB", size, ground)
    draw = ImageDraw.Draw(canvas)
    {"bands": _bands, "dots": _dots, "rings": _rings, "blocks": _blocks, "grid": _grid}[pattern](
        draw, size, tone, accent, rng)
    return canvas.reduce(SUPERSAMPLE)


def _bands(draw, size, tone, accent, rng):
    """Diagonal bands in the tone, with an accent bar (a band in the accent crossed the text)."""
    width, height = size
    step = width * rng.uniform(0.12, 0.2)
    offset = rng.choice((-1, 1)) * rng.uniform(0.4, 0.9) * height
    for x in _frange(-height + rng.uniform(0, step), width + height, 2 * step):
        draw.polygon([(x, 0), (x + step, 0), (x + step + offset, height), (x + offset, height)],
                     fill=tone)
    _bar(draw, size, accent, rng)


def _dots(draw, size, tone, accent, rng):
    """A halftone of dots growing towards one corner, and an accent disc across an edge."""
    width, height = size
    step = width / rng.choice((9, 11, 13))
    corner = (rng.choice((0, width)), rng.choice((0, height)))
    reach = math.hypot(width, height)
    for y in _frange(step / 2, height, step):
        for x in _frange(step / 2, width, step):
            radius = step * 0.42 * (1 - math.hypot(x - corner[0], y - corner[1]) / reach)
            if radius > 1:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=tone)
    _disc(draw, size, accent, rng)


def _rings(draw, size, tone, accent, rng):
    """Concentric rings from a point off the top or bottom edge."""
    width, height = size
    ground = draw.im.getpixel((0, 0))
    centre = (rng.uniform(0, width), rng.choice((-0.1, 1.1)) * height)
    step = width * rng.uniform(0.07, 0.11)
    for index, radius in enumerate(_frange(math.hypot(width, height) * 1.2, step, -step)):
        draw.ellipse((centre[0] - radius, centre[1] - radius, centre[0] + radius,
                      centre[1] + radius), fill=tone if index % 2 == 0 else ground)
    _bar(draw, size, accent, rng)


def _blocks(draw, size, tone, accent, rng):
    """Large flat shapes: a slab in the tone across the card and a disc in the accent."""
    width, height = size
    top = height * rng.uniform(0.15, 0.45)
    draw.rectangle((0, top, width, top + height * rng.uniform(0.25, 0.45)), fill=tone)
    skew = width * rng.uniform(0.2, 0.5)
    draw.polygon([(0, height), (width, height - skew), (width, height)], fill=tone)
    _disc(draw, size, accent, rng)


def _grid(draw, size, tone, accent, rng):
    """A fine grid of lines in the tone, with an accent bar."""
    width, height = size
    step = width / rng.uniform(6, 10)
    line = max(2, round(width / 270))
    for x in _frange(rng.uniform(0, step), width, step):
        draw.rectangle((x - line, 0, x + line, height), fill=tone)
    for y in _frange(rng.uniform(0, step), height, step):
        draw.rectangle((0, y - line, width, y + line), fill=tone)
    _bar(draw, size, accent, rng)


def _disc(draw, size, accent, rng):
    width, height = size
    radius = width * rng.uniform(0.22, 0.35)
    x = rng.choice((0.0, 1.0)) * width
    y = rng.choice((0.04, 0.96)) * height
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=accent)


def _bar(draw, size, accent, rng):
    width, height = size
    y = rng.choice((rng.uniform(0.03, 0.07), rng.uniform(0.91, 0.95))) * height
    draw.rectangle((0, y, width, y + height * rng.uniform(0.015, 0.035)), fill=accent)


def _frange(start: float, stop: float, step: float):
    value = start
    while (value < stop) if step > 0 else (value > stop):
        yield value
        value += step


# Pictograms ----------------------------------------------------------------------------


@cache
def _pictograms() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((emoji, tuple(str(word).casefold() for word in words))
                 for emoji, words in load_table("pictograms").items())


def pictogram(text: str) -> str | None:
    """The emoji of the first word of `text` that config/pictograms.yaml names, or None."""
    folded = text.casefold()
    words = re.findall(r"\w[\w'-]*", folded)
    best: tuple[int, str] | None = None
    for emoji, keywords in _pictograms():
        for keyword in keywords:
            where = _find(keyword, folded, words)
            if where is not None and (best is None or where < best[0]):
                best = (where, emoji)
    return best[1] if best else None


def _find(keyword: str, folded: str, words: list[str]) -> int | None:
    """Where in the text `keyword` matches: a word index, or far along for an unspaced one."""
    if any(ord(c) >= 0x3000 for c in keyword):
        return folded.index(keyword) if keyword in folded else None
    stem = unicodedata.name(keyword[0], "").startswith(("GREEK", "CYRILLIC"))
    for index, word in enumerate(words):
        if word == keyword or (stem and word.startswith(keyword) and len(word) - len(keyword) <= 3
                               ) or (not stem and word in (keyword + "s", keyword + "es")):
            return index
    return None


def _draw_pictogram(draw: ImageDraw.ImageDraw, emoji: str, centre: tuple[float, float],
                    size: float, fill: Color) -> None:
    path = fonts.family("emoji").files[ord(emoji)]
    draw.text(centre, emoji, fill=fill, font=typeset.font(path, max(8, round(size))), anchor="mm")


# Layouts: each draws the text (and the pictogram) inside `zone` and returns the text's box.


def _set(draw, text, typeface, box: Box, align, ink, max_size) -> Box:
    left, top, right, bottom = box
    setting = typeset.fit(text, typeface, right - left, bottom - top, max_size)
    y = top + (bottom - top - setting.height) / 2
    typeset.draw(draw, setting, left, y, right - left, align, ink)
    return left, y, right, y + setting.height


def _centred(draw, text, number, picture, typeface, zone: Box, ink, accent) -> Box:
    left, top, right, bottom = zone
    if picture:
        icon = (bottom - top) * 0.2
        _draw_pictogram(draw, picture, ((left + right) / 2, top + icon / 2), icon, accent)
        top += icon * 1.2
    return _set(draw, text, typeface, (left, top, right, bottom), "centre", ink,
                (right - left) * 0.28)


def _left(draw, text, number, picture, typeface, zone: Box, ink, accent) -> Box:
    left, top, right, bottom = zone
    rule = (right - left) * 0.03
    # The rule stands where lines start: on the right for a right-to-left text.
    rtl = typeset.right_to_left(text)
    inner = (left, top, right - rule * 2.5, bottom) if rtl else (left + rule * 2.5, top, right,
                                                                 bottom)
    box = _set(draw, text, typeface, inner, "start", ink, (right - left) * 0.26)
    edge = right - rule if rtl else left
    draw.rectangle((edge, box[1], edge + rule, box[3]), fill=accent)
    if picture:
        icon = min((box[1] - top) * 0.8, (right - left) * 0.25)
        if icon > (right - left) * 0.08:
            x = right - icon / 2 if rtl else left + icon / 2
            _draw_pictogram(draw, picture, (x, box[1] - icon * 0.65), icon, accent)
    return box


def _number(draw, text, number, picture, typeface, zone: Box, ink, accent) -> Box:
    """The number huge in the accent colour, the rest of the text under it."""
    left, top, right, bottom = zone
    rest = (text[:number.start()] + " " + text[number.end():]).strip(" ,.:;-–—")
    split = top + (bottom - top) * (0.5 if rest else 1.0)
    figure = _set(draw, number.group().strip(), typeface, (left, top, right, split), "centre",
                  accent, (right - left) * 0.5)
    if not rest:
        return figure
    words = _set(draw, rest, typeface, (left, split, right, bottom), "centre", ink,
                 (right - left) * 0.14)
    return figure[0], figure[1], figure[2], words[3]


def _split(draw, text, number, picture, typeface, zone: Box, ink, accent) -> Box:
    """A panel in the accent colour with the pictogram (or a rule), the text below it."""
    left, top, right, bottom = zone
    width, _ = draw.im.size
    panel = top + (bottom - top) * 0.34
    draw.rectangle((0, top - (bottom - top) * 0.06, width, panel), fill=accent)
    glyph = max([(255, 255, 255), (17, 17, 17)], key=lambda c: contrast(c, accent))
    if picture:
        _draw_pictogram(draw, picture, ((left + right) / 2, (top + panel) / 2),
                        (panel - top) * 0.7, glyph)
    return _set(draw, text, typeface, (left, panel + (bottom - top) * 0.06, right, bottom),
                "centre", ink, (right - left) * 0.26)
