"""The reference node: one picture of a character or a location that every scene with it is
drawn from. The user's own pictures when the profile has them (keyed by their digests),
otherwise a reference sheet generated from the profile's text and the style."""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.settings import Settings
from tasks.nodes import Generator, Node
from tasks.pictures import contact_sheet, open_picture, png
from tasks.prompts import reference_prompt
from tasks.providers.base import ImageGenerator, ImageRequest, Usage
from tasks.storyboard import Aspect, Character, Location, SpritePose, Storyboard, take_params

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

REFERENCE_VERSION = 1


def user_pictures(subject: Character | Location) -> list:
    """The profile's reference pictures; for a character with none, its listening sprite (a
    picture of it the user drew)."""
    if subject.references or not isinstance(subject, Character) or not subject.sprites:
        return subject.references
    return [subject.sprites[SpritePose.listening]]


def describe(step: Step, storyboard: Storyboard, settings: Settings, generator: ImageGenerator,
             upstream: Upstream) -> tuple[Node, Generator]:
    subject = storyboard.subject(step.subject)
    side = settings.short_side
    pictures = user_pictures(subject)
    if pictures:  # the user's pictures: no provider, no cost
        node = Node(id=step.id, kind="reference", version=REFERENCE_VERSION, provider="reelflow",
                    provider_version=1, model="pictures", params={"width": side, "height": side},
                    inputs={f"picture-{i}": p.digest for i, p in enumerate(pictures)})

        def collect(workdir):
            sheet = contact_sheet([open_picture(p) for p in pictures], side)
            return {"image": (png(sheet), "image/png")}, Usage()

        return node, collect

    take = take_params(subject.reference_take if isinstance(subject, Character) else 1,
                       storyboard.seed)
    request = ImageRequest(prompt=reference_prompt(subject, storyboard.director),
                           style=storyboard.style, width=side, height=side,
                           seed=take.get("seed", storyboard.seed), aspect=Aspect.square)
    node = Node.served_by(generator, id=step.id, kind="reference", version=REFERENCE_VERSION,
                          params={**request.model_dump(mode="json",
                                                            exclude={"references", "palette"}),
                                  **take}, inputs={}, expected=Usage(images=1))

    def generate(workdir):
        result = generator.generate(request)
        return {"image": (result.png, "image/png")}, result.usage

    return node, generate
