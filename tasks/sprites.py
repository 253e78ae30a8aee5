"""The sprite node: a character's `talking` and `listening` pictures for dialogue scenes.

The profile's own sprites when it has them (keyed by their digests), otherwise both cut from
the character's reference: a round portrait framed in the character's colour, the talking one
with a bolder ring and full brightness, the listening one dimmed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from cache import open_store
from config.settings import Settings
from tasks.nodes import Generator, Node
from tasks.pictures import open_picture, png
from tasks.providers.base import Usage
from tasks.storyboard import SpritePose, Storyboard

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

SPRITE_VERSION = 1
SPRITE_HEIGHT = 480  # compose scales sprites down to its row; this keeps them sharp at 1080p


def describe(step: Step, storyboard: Storyboard, settings: Settings, provider: None,
             upstream: Upstream) -> tuple[Node, Generator]:
    character = storyboard.character(step.subject)
    if character.sprites:
        sprites = character.sprites
        node = Node(id=step.id, kind="sprite", version=SPRITE_VERSION, provider="reelflow",
                    provider_version=1, model="pictures", params={"height": SPRITE_HEIGHT},
                    inputs={pose.value: picture.digest for pose, picture in sprites.items()})

        def collect(workdir):
            return {pose.value: (png(_fit(open_picture(sprites[pose]))), "image/png")
                    for pose in SpritePose}, Usage()

        return node, collect

    reference = upstream[f"ref-{character.id}"]["image"]
    color = character.shown_color
    node = Node(id=step.id, kind="sprite", version=SPRITE_VERSION, provider="reelflow",
                provider_version=1, model="cutout", inputs={"reference": reference.digest},
                params={"height": SPRITE_HEIGHT, "color": color})

    def cut(workdir):
        with Image.open(open_store(settings.store).blob_path(reference.digest)) as picture:
            portrait = picture.convert("RGBA")
        return {pose.value: (png(_badge(portrait, color, pose)), "image/png")
                for pose in SpritePose}, Usage()

    return node, cut


def _fit(picture: Image.Image) -> Image.Image:
    return ImageOps.contain(picture, (SPRITE_HEIGHT, SPRITE_HEIGHT), Image.Resampling.LANCZOS)


def _badge(reference: Image.Image, color: str, pose: SpritePose) -> Image.Image:
    """The top centre of the reference (where a reference sheet has the face), in a circle."""
    side = SPRITE_HEIGHT
    crop = min(reference.width, reference.height)
    face = reference.crop(((reference.width - crop) // 2, 0,
                           (reference.width + crop) // 2, crop))
    face = face.resize((side, side), Image.Resampling.LANCZOS)
    if pose is SpritePose.listening:
        face = ImageEnhance.Brightness(face).enhance(0.7)
    ring = side // (9 if pose is SpritePose.talking else 24)
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).ellipse((ring, ring, side - ring, side - ring), fill=255)
    badge = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(badge).ellipse((0, 0, side - 1, side - 1), fill=color)
    badge.paste(face, (0, 0), mask)
    return badge
