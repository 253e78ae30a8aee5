"""A shot's look against its location's reference, and the grade that brings it back.

The look is the shot's mean colour in CIELAB: L* is its lighting, a* and b* its colour. The
distance is the 1976 colour difference (ΔE) between the shot's mean and the reference's. A
shot that drifts is graded toward the reference by a gain per RGB channel (ffmpeg's
colorchannelmixer), the least of the way that brings it well within the threshold; only a
shot no grade within MAX_GAIN can bring within it is made again. Means, not histograms: a
close-up fills the frame with a character, which moves a histogram far more than the light of
the place.
"""

from __future__ import annotations

from pathlib import Path

import numpy
from PIL import Image

LOOK_DISTANCE = 25.0  # ΔE of mean colours past which a shot is off its location's look
GRADE_TARGET = LOOK_DISTANCE / 2  # where a grade aims: well inside, not on the edge
MAX_GAIN = 1.5  # a channel pushed further than this (or its inverse) is another picture
GRADE_STEPS = 10  # the shares of the full grade tried, smallest first
THUMBNAIL = 96  # the side pictures are measured at: a mean needs few pixels

# sRGB (D65) to CIE XYZ, and the D65 white point.
_TO_XYZ = numpy.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                       [0.0193, 0.1192, 0.9505]])
_WHITE = numpy.array([0.95047, 1.0, 1.08883])

Gains = tuple[float, float, float]
UNGRADED: Gains = (1.0, 1.0, 1.0)


def pixels(path: Path) -> numpy.ndarray:
    """The picture's RGB values (0-255) as rows of three, from a small copy."""
    with Image.open(path) as picture:
        small = picture.convert("RGB")
        small.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
        return numpy.asarray(small, dtype=numpy.float64).reshape(-1, 3)


def mean_lab(rgb: numpy.ndarray) -> numpy.ndarray:
    """The mean CIELAB colour of sRGB rows."""
    c = rgb / 255.0
    linear = numpy.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _TO_XYZ.T / _WHITE
    edge = (6 / 29) ** 3
    f = numpy.where(xyz > edge, numpy.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = numpy.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]),
                       200 * (f[:, 1] - f[:, 2])], axis=1)
    return lab.mean(axis=0)


def distance(shot: numpy.ndarray, reference: numpy.ndarray) -> float:
    """ΔE between the mean colours of two pictures' pixels."""
    return float(numpy.linalg.norm(mean_lab(shot) - mean_lab(reference)))


def graded(rgb: numpy.ndarray, gains: Gains) -> numpy.ndarray:
    return numpy.clip(rgb * numpy.array(gains), 0, 255)


def grade(shot: numpy.ndarray, reference: numpy.ndarray) -> tuple[Gains, float]:
    """The gentlest gains that bring `shot` within GRADE_TARGET of `reference`, or the nearest
    MAX_GAIN allows, and the distance they leave."""
    full = numpy.clip(reference.mean(axis=0) / numpy.maximum(shot.mean(axis=0), 1.0),
                      1 / MAX_GAIN, MAX_GAIN)
    best: tuple[Gains, float] = (UNGRADED, distance(shot, reference))
    for step in range(1, GRADE_STEPS + 1):
        gains = tuple(round(float(g), 3) for g in 1 + (full - 1) * step / GRADE_STEPS)
        left = distance(graded(shot, gains), reference)
        if left < best[1]:
            best = (gains, left)
        if left <= GRADE_TARGET:
            break
    return best


def mixer(gains: Gains) -> str:
    """The ffmpeg filter that applies `gains`."""
    red, green, blue = gains
    return f"colorchannelmixer=rr={red}:gg={green}:bb={blue}"
