"""Offline keyframes: a soft abstract composition painted from the style's palette, with the
scene's references drawn in: the location's picture washed over the backdrop, each character
as a silhouette in its reference's main colour. The offline path runs the same graph as the
cloud one, and a change to a reference shows in every keyframe drawn from it."""

from __future__ import annotations

import hashlib
import json
import math
import random

from collections import Counter

from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageOps

from config.catalog import styles
from tasks.pictures import png
from tasks.providers.base import ImageGenerator, ImageReference, ImageRequest, ImageResult, Usage

FALLBACK_STYLE = "documentary"
# Everything is painted this many times smaller and enlarged at the end: soft shapes need no
# detail, and a small canvas keeps a 1080x1920 frame well under a tenth of a second.
DOWNSCALE = 8

Color = tuple[int, int, int]


class LocalImage(ImageGenerator):
    name = "local"
    version = 1
    accepts_reference_images = True

    class Options(ImageGenerator.Options):
        model: str = "procedural"

    def generate(self, request: ImageRequest) -> ImageResult:
        style = request.style if request.style in styles() else FALLBACK_STYLE
        palette = [ImageColor.getrgb(color) for color in styles()[style]["palette"]]
        rng = _rng(request.prompt, style, request.seed)
        canvas = _paint(palette, rng, request.width, request.height)
        canvas = _draw_references(canvas, request.references)
        # Light compression: the bytes are cached and decoded once, so speed beats size.
        return ImageResult(png=png(canvas), usage=Usage(images=1))


def _rng(prompt: str, style: str, seed: int) -> random.Random:
    """A generator seeded by the request alone, so one request always paints the same picture.

    `style` is the one painted with, so an unknown style gives exactly the fallback's picture.
    """
    material = json.dumps([prompt, style, seed])
    return random.Random(hashlib.sha256(material.encode()).digest())


def _paint(palette: list[Color], rng: random.Random, width: int, height: int) -> Image.Image:
    small = (max(16, math.ceil(width / DOWNSCALE)), max(16, math.ceil(height / DOWNSCALE)))
    dark, light = sorted(rng.sample(palette, 2), key=sum)
    canvas = _gradient(dark, light, rng.uniform(0, 360), small)
    for _ in range(rng.randint(4, 7)):
        color, size, stretch = rng.choice(palette), rng.uniform(0.15, 0.45), rng.uniform(0.6, 1.6)
        canvas = _blob(canvas, color, size, stretch, rng)
    # A few small bright spots read as out-of-focus lights and give the motion something to track.
    for _ in range(rng.randint(3, 8)):
        canvas = _blob(canvas, max(palette, key=sum), rng.uniform(0.02, 0.06), 1.0, rng)
    canvas = _vignette(canvas, rng.uniform(0.25, 0.5))
    return canvas.resize((width, height), Image.Resampling.BICUBIC)


def _gradient(start: Color, end: Color, angle: float, size: tuple[int, int]) -> Image.Image:
    # Rotating the 256x256 ramp with expand=False leaves corners empty, so rotate a larger
    # crop-safe ramp and take its centre.
    ramp = Image.linear_gradient("L").resize((512, 512)).rotate(angle, Image.Resampling.BILINEAR)
    ramp = ramp.crop((128, 128, 384, 384)).resize(size, Image.Resampling.BILINEAR)
    return ImageOps.colorize(ramp, start, end)


def _blob(
    canvas: Image.Image, color: Color, size: float, stretch: float, rng: random.Random
) -> Image.Image:
    """A blurred, partly transparent ellipse `size` widths in radius, `stretch` times as tall."""
    width, height = canvas.size
    radius = size * width
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    mask = Image.new("L", canvas.size, 0)
    ImageDraw.Draw(mask).ellipse(
        (x - radius, y - radius * stretch, x + radius, y + radius * stretch),
        fill=rng.randint(70, 170),
    )
    mask = mask.filter(ImageFilter.GaussianBlur(radius * rng.uniform(0.15, 0.4)))
    return Image.composite(Image.new("RGB", canvas.size, color), canvas, mask)


def _vignette(canvas: Image.Image, strength: float) -> Image.Image:
    """Darken the corners, as a lens does, to give the flat composition some depth."""
    edge = Image.radial_gradient("L").resize(canvas.size, Image.Resampling.BILINEAR)
    mask = edge.point(lambda value: int(value * strength))
    return Image.composite(Image.new("RGB", canvas.size, (0, 0, 0)), canvas, mask)


def _draw_references(canvas: Image.Image, references: list[ImageReference]) -> Image.Image:
    for reference in references:
        if reference.subject == "location":
            with Image.open(reference.path) as picture:
                place = ImageOps.fit(picture.convert("RGB"), canvas.size)
            canvas = Image.blend(canvas, place.filter(ImageFilter.GaussianBlur(canvas.width / 40)),
                                 0.5)
    cast = [r for r in references if r.subject == "character"]
    for index, reference in enumerate(cast):
        with Image.open(reference.path) as picture:
            color = _main_color(picture)
        canvas = _silhouette(canvas, color, (index + 1) / (len(cast) + 1))
    return canvas


def _main_color(picture: Image.Image) -> Color:
    """The most common strong colour of a picture (skin, backdrop and greys lose to clothes)."""
    small = picture.convert("RGBA").resize((48, 48), Image.Resampling.BILINEAR)
    counts = Counter()
    for red, green, blue, alpha in small.getdata():
        strongest = max(red, green, blue)
        if alpha > 128 and strongest > 40 and (strongest - min(red, green, blue)) / strongest > 0.5:
            counts[(red // 32 * 32 + 16, green // 32 * 32 + 16, blue // 32 * 32 + 16)] += 1
    return counts.most_common(1)[0][0] if counts else (200, 200, 200)


def _silhouette(canvas: Image.Image, color: Color, across: float) -> Image.Image:
    """A figure in `color` standing in the middle distance at `across` of the width, half
    blended into the scene: the picture's subject, clear of where captions and sprites go."""
    width, height = canvas.size
    unit = min(width / 7, height / 10)
    x, floor = across * width, height * 0.46
    mask = Image.new("L", canvas.size, 0)
    draw = ImageDraw.Draw(mask)
    draw.rounded_rectangle((x - unit * 0.6, floor - unit * 1.9, x + unit * 0.6, floor),
                           radius=unit * 0.4, fill=150)
    draw.ellipse((x - unit * 0.38, floor - unit * 2.75, x + unit * 0.38, floor - unit * 1.99),
                 fill=150)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1, unit / 25)))
    return Image.composite(Image.new("RGB", canvas.size, color), canvas, mask)
