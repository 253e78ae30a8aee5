"""Pictures reelflow draws or reads itself: a user's profile pictures (checked against the
digest the storyboard recorded), contact sheets and placeholders."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from cache.keys import bytes_digest
from tasks.providers.base import BrokenOutput, ProviderError, Usage
from tasks.storyboard import Picture

BACKDROP = (236, 236, 232)


def open_picture(picture: Picture) -> Image.Image:
    """The picture's pixels, if its file still holds the bytes the storyboard recorded."""
    try:
        with open(picture.path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ProviderError(f"cannot read {picture.path}: {error.strerror}") from None
    if bytes_digest(data) != picture.digest:
        raise ProviderError(f"{picture.path} changed since the storyboard was written; "
                            "plan again to use the new picture")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGBA")
    except (UnidentifiedImageError, OSError):
        raise ProviderError(f"{picture.path} is not a picture that can be read") from None


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def framed(data: bytes, width: int, height: int, provider: str) -> bytes:
    """A provider's picture centre-cropped to the asked shape and, when larger, scaled down to
    the asked size, as PNG. A smaller one is not enlarged here: its gate decides whether it is
    close enough to enlarge or must be made again (tasks/gates.py)."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.load()
            rgb = picture.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise BrokenOutput(f"{provider}: the picture does not decode: {error}",
                           Usage(images=1)) from None
    scale = min(1.0, rgb.width / width, rgb.height / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return png(ImageOps.fit(rgb, size, Image.Resampling.LANCZOS))


def contact_sheet(pictures: list[Image.Image], side: int) -> Image.Image:
    """The pictures fitted into a square grid `side` pixels wide, on a light backdrop."""
    columns = math.ceil(math.sqrt(len(pictures)))
    rows = math.ceil(len(pictures) / columns)
    cell = (side // columns, side // rows)
    sheet = Image.new("RGBA", (side, side), (*BACKDROP, 255))
    for index, picture in enumerate(pictures):
        fitted = ImageOps.contain(picture, cell, Image.Resampling.LANCZOS)
        x = (index % columns) * cell[0] + (cell[0] - fitted.width) // 2
        y = (index // columns) * cell[1] + (cell[1] - fitted.height) // 2
        sheet.alpha_composite(fitted, (x, y))
    return sheet.convert("RGB")


def placeholder(width: int, height: int) -> bytes:
    """A picture that is clearly not the real one: grey with a cross and PLACEHOLDER on it."""
    image = Image.new("RGB", (width, height), (96, 96, 96))
    draw = ImageDraw.Draw(image)
    line = max(2, min(width, height) // 60)
    draw.line((0, 0, width, height), fill=(150, 150, 150), width=line)
    draw.line((0, height, width, 0), fill=(150, 150, 150), width=line)
    font = ImageFont.load_default(size=max(10, width // 10))
    draw.text((width / 2, height / 2), "PLACEHOLDER", font=font, anchor="mm", fill=(255, 255, 255),
              stroke_width=max(1, line // 2), stroke_fill=(0, 0, 0))
    return png(image)
