"""Offline keyframes: designed cards (tasks/cards.py) with the scene's on-screen text set
large in the style's typeface, and the scene's references drawn in. The offline path runs the
same graph as the cloud one."""

from __future__ import annotations

import hashlib
import json
import math
import random

from collections import Counter

from PIL import Image, ImageDraw, ImageOps, ImageStat

from config.catalog import styles
from tasks.cards import Box, Look, draw_card, text_zone
from tasks.subtitles import caption_top
from tasks.pictures import png
from tasks.providers.base import ImageGenerator, ImageReference, ImageRequest, ImageResult, Usage

FALLBACK_STYLE = "documentary"

Color = tuple[int, int, int]


class LocalImage(ImageGenerator):
    name = "local"
    # 2: typographic cards (1 painted soft blobs); 3: text clear of 1.2× pans; 4: a scene's
    # card on its location's ground
    version = 4
    accepts_reference_images = True

    class Options(ImageGenerator.Options):
        model: str = "procedural"

    def generate(self, request: ImageRequest) -> ImageResult:
        style = request.style if request.style in styles() else FALLBACK_STYLE
        rng = _rng(request, style)
        # No on-screen text (a storyboard from before it existed, a planner that gave none,
        # a reference sheet): a pure design with the prompt's pictogram, never words made up
        # from a description of a picture.
        look = Look.of(styles()[style] if request.palette is None else
                       {**styles()[style], "palette": request.palette, "accent": None})
        canvas, _ = draw_card(request.text or "", look, rng, request.width, request.height,
                              request.prompt, _ground(look, request.references))
        _draw_references(canvas, request.references)
        return ImageResult(png=png(canvas), usage=Usage(images=1))


def _rng(request: ImageRequest, style: str) -> random.Random:
    """A generator seeded by the request alone, so one request always draws the same picture.

    `style` is the one drawn with, so an unknown style gives exactly the fallback's picture.
    """
    drawn = [request.prompt, request.text, style, request.seed]
    material = json.dumps(drawn + ([request.palette] if request.palette else []))
    return random.Random(hashlib.sha256(material.encode()).digest())


def _ground(look: Look, references: list[ImageReference]) -> Color | None:
    """The palette's colour nearest the location's picture: every scene there shares the
    light of its place (the look gate measures it), as a painted one would."""
    place = next((r for r in references if r.subject == "location"), None)
    if place is None:
        return None
    with Image.open(place.path) as picture:
        mean = ImageStat.Stat(picture.convert("RGB")).mean
    return min(look.palette, key=lambda color: math.dist(color, mean))


def _draw_references(canvas: Image.Image, references: list[ImageReference]) -> None:
    """The scene's references in the strip under the text (behind the captions): the location's
    picture across it, an ad's product whole in its middle, each character as a disc in its
    picture's main colour; a change to a reference shows in every keyframe drawn from it."""
    width, height = canvas.size
    strip: Box = (0, round(text_zone(width, height)[3]), width, height)
    for reference in references:
        if reference.subject == "location":
            with Image.open(reference.path) as picture:
                place = ImageOps.fit(picture.convert("RGB"), (width, strip[3] - strip[1]))
            canvas.paste(Image.blend(canvas.crop(strip), place, 0.6), strip[:2])
    for reference in references:
        if reference.subject == "product":  # whole, in the strip, above the captions (unmoved)
            room = max(1, caption_top(width, height) - strip[1])
            with Image.open(reference.path) as picture:
                shown = ImageOps.contain(picture.convert("RGB"), (round(width * 0.6), room))
            canvas.paste(shown, (round((width - shown.width) / 2), strip[1]))
    cast = [r for r in references if r.subject == "character"]
    draw = ImageDraw.Draw(canvas)
    radius = min(width, height) * 0.04
    for index, reference in enumerate(cast):
        with Image.open(reference.path) as picture:
            color = _main_color(picture)
        x, y = width * (index + 1) / (len(cast) + 1), strip[1] + radius * 1.5
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color,
                     outline=(255, 255, 255), width=max(1, round(radius / 8)))


def _main_color(picture: Image.Image) -> Color:
    """The most common strong colour of a picture (skin, backdrop and greys lose to clothes)."""
    small = picture.convert("RGBA").resize((48, 48), Image.Resampling.BILINEAR)
    counts = Counter()
    for red, green, blue, alpha in small.getdata():
        strongest = max(red, green, blue)
        if alpha > 128 and strongest > 40 and (strongest - min(red, green, blue)) / strongest > 0.5:
            counts[(red // 32 * 32 + 16, green // 32 * 32 + 16, blue // 32 * 32 + 16)] += 1
    return counts.most_common(1)[0][0] if counts else (200, 200, 200)
