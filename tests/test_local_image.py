import io

import pytest
from PIL import Image, ImageChops, ImageStat

from tasks.providers.base import ImageRequest
from tasks.providers.local_image import LocalImage


def _request(**changes) -> ImageRequest:
    fields = {"prompt": "a lighthouse at dawn", "style": "documentary", "width": 180,
              "height": 320, "seed": 0}
    return ImageRequest(**(fields | changes))


def _image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png))


@pytest.mark.parametrize("size", [(180, 320), (320, 180), (97, 55)])
def test_image_has_exactly_the_requested_size(size):
    width, height = size
    png = LocalImage().generate(_request(width=width, height=height)).png
    assert _image(png).format == "PNG"
    assert _image(png).size == size


def test_same_request_gives_identical_png_bytes():
    assert LocalImage().generate(_request()).png == LocalImage().generate(_request()).png


@pytest.mark.parametrize(
    "change",
    [{"prompt": "a desert at noon"}, {"style": "neon"}, {"style": "noir"}, {"seed": 1}],
)
def test_different_prompt_style_or_seed_gives_a_visibly_different_image(change):
    before = _image(LocalImage().generate(_request()).png).convert("RGB")
    after = _image(LocalImage().generate(_request(**change)).png).convert("RGB")
    mean_difference = sum(ImageStat.Stat(ImageChops.difference(before, after)).mean) / 3
    assert mean_difference > 8  # out of 255: a different picture, not a rounding change


def test_unknown_style_paints_the_documentary_picture():
    unknown = LocalImage().generate(_request(style="no-such-style")).png
    assert unknown == LocalImage().generate(_request(style="documentary")).png


def test_each_image_is_counted_once_for_pricing():
    assert LocalImage().generate(_request()).usage.images == 1


def test_image_is_not_a_flat_fill():
    stddev = ImageStat.Stat(_image(LocalImage().generate(_request()).png).convert("L")).stddev
    assert stddev[0] > 5
