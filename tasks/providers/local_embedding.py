"""Offline shot checks: which strong colours a picture shows, and how much of each.

The vector is the share of the picture (at most 256 px long) in each of 64 RGB bins, first
counting only strong colours (saturated, not dark: clothes, props, the discs the offline
keyframes draw for their cast; not skin, greys or paper), then every colour. A shot matches a
reference by how much of the reference's main colours (the fewest bins that hold half its strong
colour) the shot shows somewhere, in at least a small patch (0.1% of it): 1 when all of them, 0
when none. It sees colour: a character drawn in another colour or left out, a place
tinted. It cannot see faces, shapes, poses, or tell two characters dressed alike apart; a
cloud embedder (a CLIP model) sees those.
"""

from __future__ import annotations

from PIL import Image
from pydantic import Field

from tasks.providers.base import EmbeddingRequest, EmbeddingResult, ImageEmbedder, Usage

LONG_SIDE = 256  # pictures are looked at this small (never stretched: small features stay round)
LEVELS = 4  # per channel
BINS = LEVELS ** 3
PATCH = 0.001  # the share of a shot a colour must cover to count as shown


class LocalEmbedding(ImageEmbedder):
    name = "local"
    version = 1

    class Options(ImageEmbedder.Options):
        model: str = "strong-colours"
        # Measured on the offline pictures: a keyframe scores 1 against each character
        # drawn in it, 0 against a character it does not show.
        threshold: float = Field(0.3, ge=0, le=1)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        return EmbeddingResult(vectors=[colours(path) for path in request.images],
                               usage=Usage(images=len(request.images)))

    def similarity(self, shot: list[float], reference: list[float]) -> float:
        strong, shown = reference[:BINS], shot[BINS:]
        main = _main_colours(strong)
        if not main:  # a reference with no strong colour: nothing to look for
            return 1.0
        total = sum(strong[index] for index in main)
        return round(sum(strong[index] / total * min(1.0, shown[index] / PATCH)
                         for index in main), 4)


def _main_colours(vector: list[float]) -> list[int]:
    """The fewest bins that hold half of a picture's strong colour, largest first."""
    order = sorted(range(len(vector)), key=lambda index: -vector[index])
    main, held, total = [], 0.0, sum(vector)
    for index in order:
        if held >= total / 2 or not vector[index]:
            break
        main.append(index)
        held += vector[index]
    return main


def colours(path) -> list[float]:
    """The picture's share in each bin of its strong colours, then of all its colours (a
    colour drawn from a reference's, say its bin's middle, may be less saturated than it)."""
    with Image.open(path) as picture:
        small = picture.convert("RGBA")
    small.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.BOX)
    strong, every = [0.0] * BINS, [0.0] * BINS
    share = 1 / (small.width * small.height)
    for red, green, blue, alpha in small.getdata():
        if alpha <= 128:
            continue
        index = ((red * LEVELS // 256) * LEVELS + green * LEVELS // 256) * LEVELS \
            + blue * LEVELS // 256
        every[index] += share
        strongest = max(red, green, blue)
        if strongest > 40 and (strongest - min(red, green, blue)) / strongest > 0.5:
            strong[index] += share
    return [round(value, 6) for value in [*strong, *every]]
