"""An ad's end card: its product's picture and name, and its call to action set as a title in
reelflow's fonts (every script, shaped), never lettering a model drew into a picture. Every
video provider would warp set text, so the end card's clip is always a still (tasks/graph.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageOps

from cache import open_store
from config.catalog import styles
from config.settings import Settings
from tasks import typeset
from tasks.cards import Look, contrast
from tasks.subtitles import caption_top
from tasks.nodes import Generator, Node
from tasks.pictures import png
from tasks.providers.base import Usage
from tasks.storyboard import PRODUCT_ID, Storyboard

if TYPE_CHECKING:
    from tasks.graph import Upstream

END_CARD_VERSION = 1
WHITE, BLACK = (255, 255, 255), (17, 17, 17)


def describe(scene_id: str, storyboard: Storyboard, settings: Settings,
             upstream: Upstream) -> tuple[Node, Generator]:
    """The end card's keyframe node: drawn here, from the product's reference, at no cost."""
    ad = storyboard.ad
    width, height = storyboard.aspect.size(settings.short_side)
    product = upstream[f"ref-{PRODUCT_ID}"]["image"]
    palette = storyboard.director.palette if storyboard.director else None
    params = {"name": ad.product.name, "cta": ad.cta, "style": storyboard.style,
              "width": width, "height": height, "palette": palette}
    node = Node(id=f"{scene_id}-image", kind="image", version=END_CARD_VERSION,
                provider="reelflow", provider_version=1, model="end-card", scene=scene_id,
                params=params, inputs={"product": product.digest})

    def draw(workdir):
        style = styles()[storyboard.style]
        look = Look.of(style if palette is None else {**style, "palette": palette})
        with Image.open(open_store(settings.store).blob_path(product.digest)) as picture:
            card = end_card(picture.convert("RGB"), ad.product.name, ad.cta, look, width, height)
        return {"image": (png(card), "image/png")}, Usage()

    return node, draw


def end_card(product: Image.Image, name: str, cta: str, look: Look, width: int,
             height: int) -> Image.Image:
    """The product large, its name under it, and the call to action on a button in the
    accent colour, all above the captions (its clip is a still: the whole frame shows)."""
    ground = min(look.palette, key=lambda color: sum(color))  # the darkest: the product pops
    accent = look.accent or max(look.palette, key=lambda color: contrast(color, ground))
    canvas = Image.new("RGB", (width, height), ground)
    draw = ImageDraw.Draw(canvas)
    # Clear of the platform's buttons and the screen's corners (as tasks/cards.py's text).
    left, top, right = 0.08 * width, 0.1 * height, 0.92 * width
    bottom = caption_top(width, height) - 0.02 * height
    zone_width, zone_height = right - left, bottom - top
    shown = ImageOps.contain(product, (round(zone_width * 0.9), round(zone_height * 0.5)))
    canvas.paste(shown, (round(left + (zone_width - shown.width) / 2), round(top)))
    y = top + shown.height + zone_height * 0.04
    ink = max((WHITE, BLACK), key=lambda color: contrast(color, ground))
    title = typeset.fit(name, look.typeface, zone_width, zone_height * 0.14, zone_height * 0.1)
    typeset.draw(draw, title, left, y, zone_width, "centre", ink)
    y += title.height + zone_height * 0.05
    label = typeset.fit(cta, look.typeface, zone_width * 0.84, zone_height * 0.2,
                        zone_height * 0.1)
    pad = label.size * 0.45
    draw.rounded_rectangle((left + zone_width * 0.05, y, right - zone_width * 0.05,
                            y + label.height + 2 * pad), radius=pad, fill=accent)
    button_ink = max((WHITE, BLACK), key=lambda color: contrast(color, accent))
    typeset.draw(draw, label, left, y + pad, zone_width, "centre", button_ink)
    return canvas
