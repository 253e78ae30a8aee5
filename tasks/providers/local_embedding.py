"""Offline shot checks: which strong colours a picture shows, and how much of each.

The vector is the share of the picture (shrunk to 96×96) in each of 64 RGB bins, counting only
strong colours (saturated, not dark): clothes, props, the discs the offline keyframes draw for
their cast; not skin, greys or paper. A shot matches a reference by how much of the reference's
strong colour the shot shows somewhere, in at least a small patch (0.2% of it): 1 when all of
it, 0 when none. It sees colour: a character drawn in another colour or left out, a place
tinted. It cannot see faces, shapes, poses, or tell two characters dressed alike apart; a
cloud embedder (a CLIP model) sees those.
"""

from __future__ import annotations

from PIL import Image
from pydantic import Field

from tasks.providers.base import EmbeddingRequest, EmbeddingResult, ImageEmbedder, Usage

SIDE = 96
LEVELS = 4  # per channel: 64 bins
PATCH = 0.002  # the share of a shot a colour must cover to count as shown


class LocalEmbedding(ImageEmbedder):
    name = "local"
    version = 1

    class Options(ImageEmbedder.Options):
        model: str = "strong-colours"
        # Measured on the offline pictures: a keyframe scores 0.5-0.6 against each character
        # drawn in it, about 0.01 against a character it does not show.
        threshold: float = Field(0.3, ge=0, le=1)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        return EmbeddingResult(vectors=[strong_colours(path) for path in request.images],
                               usage=Usage(images=len(request.images)))

    def similarity(self, shot: list[float], reference: list[float]) -> float:
        total = sum(reference)
        if not total:  # a reference with no strong colour: nothing to look for
            return 1.0
        return round(sum(share / total * min(1.0, shown / PATCH)
                         for shown, share in zip(shot, reference)), 4)


def strong_colours(path) -> list[float]:
    with Image.open(path) as picture:
        small = picture.convert("RGBA").resize((SIDE, SIDE), Image.Resampling.BOX)
    shares = [0.0] * LEVELS ** 3
    for red, green, blue, alpha in small.getdata():
        strongest = max(red, green, blue)
        if alpha > 128 and strongest > 40 and (strongest - min(red, green, blue)) / strongest > 0.5:
            index = ((red * LEVELS // 256) * LEVELS + green * LEVELS // 256) * LEVELS \
                + blue * LEVELS // 256
            shares[index] += 1 / SIDE ** 2
    return [round(share, 6) for share in shares]
