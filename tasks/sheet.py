"""A contact sheet of the styles: one offline keyframe per style for one example scene, each
labelled with its style's name, side by side."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw

from config.catalog import styles
from tasks import typeset
from tasks.providers.base import ImageRequest
from tasks.providers.local_image import LocalImage

EXAMPLE_TEXT = "Bees talk by dancing"
EXAMPLE_PROMPT = "a honeybee dancing on a honeycomb"
CARD = (360, 640)
LABEL = 56  # the strip under each card that names its style
GAP = 12


def contact_sheet(path: Path, text: str = EXAMPLE_TEXT) -> None:
    """Write the sheet of every style in config/styles.yaml to `path` (a PNG)."""
    names = list(styles())
    width, height = CARD
    sheet = Image.new("RGB", (len(names) * (width + GAP) + GAP, height + LABEL + GAP), "#ffffff")
    draw = ImageDraw.Draw(sheet)
    for index, name in enumerate(names):
        card = LocalImage().generate(ImageRequest(prompt=EXAMPLE_PROMPT, text=text, style=name,
                                                  width=width, height=height, seed=0))
        left = GAP + index * (width + GAP)
        sheet.paste(Image.open(BytesIO(card.png)), (left, GAP))
        label = typeset.fit(name, "sans", width, LABEL * 0.6, LABEL * 0.45)
        typeset.draw(draw, label, left, GAP + height + LABEL * 0.2, width, "centre", "#222222")
    sheet.save(path, format="PNG", optimize=True)
