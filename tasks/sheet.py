"""Contact sheets: one offline keyframe of one example scene per style, or per director's
look, each labelled with its name, side by side."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw

from config.bible import load_profiles
from config.catalog import styles
from tasks import typeset
from tasks.providers.base import ImageRequest
from tasks.providers.local_image import LocalImage
from tasks.storyboard import DirectorLook

EXAMPLE_TEXT = "Bees talk by dancing"
EXAMPLE_PROMPT = "a honeybee dancing on a honeycomb"
CARD = (360, 640)
LABEL = 56  # the strip under each card that names it
GAP = 12


def style_cards(text: str = EXAMPLE_TEXT) -> dict[str, ImageRequest]:
    """The example scene in every style of config/styles.yaml."""
    return {name: _example(text, style=name) for name in styles()}


def director_cards(text: str = EXAMPLE_TEXT) -> dict[str, ImageRequest]:
    """The example scene in every director's look of config/directors, as a keyframe's
    request says it (the look's prompt and palette)."""
    return {look.name: _example(text, prompt=f"{EXAMPLE_PROMPT}\n{look.describe()}",
                                palette=look.palette)
            for look in load_profiles(DirectorLook).values()}


def _example(text: str, **request) -> ImageRequest:
    return ImageRequest(**{"prompt": EXAMPLE_PROMPT, "text": text, "style": "documentary",
                           "width": CARD[0], "height": CARD[1], "seed": 0, **request})


def contact_sheet(path: Path, cards: dict[str, ImageRequest]) -> None:
    """Write the offline keyframe of each request, labelled, side by side, to `path` (a PNG)."""
    width, height = CARD
    sheet = Image.new("RGB", (len(cards) * (width + GAP) + GAP, height + LABEL + GAP), "#ffffff")
    draw = ImageDraw.Draw(sheet)
    for index, (name, request) in enumerate(cards.items()):
        card = LocalImage().generate(request)
        left = GAP + index * (width + GAP)
        sheet.paste(Image.open(BytesIO(card.png)), (left, GAP))
        label = typeset.fit(name, "sans", width, LABEL * 0.6, LABEL * 0.45)
        typeset.draw(draw, label, left, GAP + height + LABEL * 0.2, width, "centre", "#222222")
    sheet.save(path, format="PNG", optimize=True)
