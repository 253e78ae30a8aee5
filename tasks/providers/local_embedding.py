"""Offline shot checks: which strong colours a picture shows, and how much of each.

The vector is the share of the picture (at most 256 px long) in each of 64 RGB bins, first
counting only strong colours (saturated, not dark: clothes, props, the discs the offline
keyframes draw for their cast; not skin, greys or paper), then every colour. A shot matches a
reference by how much of the reference's main colours (the fewest bins that hold half its strong
colour) the shot shows somewhere, in at least a small patch (0.1% of it, counting only pixels
inside patches of colour, not the blends along edges), a colour within 12 levels of a bin's
edge counting on both sides (a video encode moves colours that much): 1 when all of them, 0
when none. It sees colour: a character drawn in another colour or left out, a place
tinted. It cannot see faces, shapes, poses, or tell two characters dressed alike apart; a
cloud embedder (a CLIP model) sees those.
"""

from __future__ import annotations

import numpy
from PIL import Image
from pydantic import Field

from tasks.providers.base import EmbeddingRequest, EmbeddingResult, ImageEmbedder, Usage

LONG_SIDE = 256  # pictures are looked at this small (never stretched: small features stay round)
LEVELS = 4  # per channel
BINS = LEVELS ** 3
PATCH = 0.001  # the share of a shot a colour must cover to count as shown
MARGIN = 12  # how near (0-255, per channel) a bin's edge a shot's colour also counts beyond it
FLAT_STEP = 24  # the most a shot's pixel may differ from a neighbour and count (0-255)


class LocalEmbedding(ImageEmbedder):
    name = "local"
    version = 2  # 2: patches, not edges; a colour near a bin's edge counts on both sides

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
    """The picture's share in each bin of its strong colours, then of all its colours, where a
    colour within MARGIN of a bin's edge counts on both sides (a colour drawn from a
    reference's, say its bin's middle, may be less saturated than it, and a video encode moves
    a colour a little)."""
    with Image.open(path) as picture:
        small = picture.convert("RGBA")
    small.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.BOX)
    pixels = numpy.asarray(small, dtype=numpy.int64)
    opaque = (pixels[..., 3] > 128).reshape(-1)
    flat = _flat(pixels[..., :3]).reshape(-1)
    rgb = pixels[..., :3].reshape(-1, 3)
    top, bottom = rgb.max(axis=1), rgb.min(axis=1)
    strong = opaque & (top > 40) & ((top - bottom) / numpy.maximum(top, 1) > 0.5)
    share = 1 / (small.width * small.height)
    return [round(float(value) * share, 6) for value in
            [*_histogram(rgb[strong], 0), *_histogram(rgb[opaque & flat], MARGIN)]]


def _flat(rgb: numpy.ndarray) -> numpy.ndarray:
    """Where a pixel is like its four neighbours: inside a patch of colour, not on the blend
    between two (an edge's blend can be any colour, the shade of a character's clothes too)."""
    height, width, _ = rgb.shape
    steepest = numpy.zeros((height, width), dtype=numpy.int64)
    for axis in (0, 1):
        step = numpy.abs(numpy.diff(rgb, axis=axis)).max(axis=2)
        if axis == 0:
            steepest[1:] = numpy.maximum(steepest[1:], step)
            steepest[:-1] = numpy.maximum(steepest[:-1], step)
        else:
            steepest[:, 1:] = numpy.maximum(steepest[:, 1:], step)
            steepest[:, :-1] = numpy.maximum(steepest[:, :-1], step)
    return steepest <= FLAT_STEP


def _histogram(rgb: numpy.ndarray, margin: int) -> numpy.ndarray:
    """How many pixels fall in each bin, a pixel counted once in every bin within `margin`
    of its colour."""
    width = 256 // LEVELS
    low = numpy.clip(rgb - margin, 0, 255) // width
    high = numpy.clip(rgb + margin, 0, 255) // width
    corners = numpy.stack([
        ((numpy.where(corner, high, low)) * numpy.array([LEVELS * LEVELS, LEVELS, 1])).sum(axis=1)
        for corner in numpy.ndindex(2, 2, 2)], axis=1)
    corners.sort(axis=1)
    once = numpy.concatenate([numpy.ones((len(corners), 1), bool),
                              corners[:, 1:] != corners[:, :-1]], axis=1)
    return numpy.bincount(corners[once], minlength=BINS).astype(numpy.float64)
