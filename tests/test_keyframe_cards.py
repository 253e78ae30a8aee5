"""The offline keyframe as a viewer sees it: tesseract reads each scene's on-screen text off the
picture, in Latin, Greek, Cyrillic and Chinese, and what it reads sits above the captions; two
styles give different colours and letterforms; every shipped style draws."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections import Counter

import pytest
from PIL import Image

from config.catalog import StyleError, _check_style, styles
from tasks.cards import pictogram
from tasks.providers.base import ImageRequest
from tasks.providers.local_image import LocalImage
from tasks.subtitles import caption_top
from tests.ocr import need_tesseract, plain, read_words
from tests.test_cli_input import run

WIDTH, HEIGHT = 720, 1280
SCENES = [  # (text, tesseract language, style)
    ("Honeybees dance to share directions", "eng", "documentary"),
    ("Light needs eight minutes", "eng", "neon"),
    ("Οι μέλισσες χορεύουν", "ell", "pastel"),
    ("Пчёлы танцуют на сотах", "rus", "noir"),
    ("蜜蜂用舞蹈交流", "chi_sim", "vivid"),
]


def _keyframe(text: str | None, style: str, seed: int = 0) -> Image.Image:
    request = ImageRequest(prompt="a meadow in summer", text=text, style=style, width=WIDTH,
                           height=HEIGHT, seed=seed)
    return Image.open(io.BytesIO(LocalImage().generate(request).png)).convert("RGB")


@pytest.mark.parametrize("text,language,style", SCENES, ids=[s[1] + "-" + s[2] for s in SCENES])
def test_ocr_reads_the_on_screen_text_above_the_captions(text, language, style):
    need_tesseract(language)
    words = read_words(_keyframe(text, style), language)
    read = " ".join(plain(word) for word, _ in words)
    # Chinese is read a line at a time, in whatever order the passes find the lines.
    for word in (text if language == "chi_sim" else text.split()):
        assert plain(word) in read, f"{word!r} not read in {[w for w, _ in words]}"
    # The boxes of what was read of the text: its words, or in Chinese two characters or more
    # of it (a stray mark in a pattern can read as a letter).
    ours = {plain(word) for word in text.split()}
    wanted = [box for word, box in words if plain(word) in ours or (
        language == "chi_sim" and len(plain(word)) > 1 and plain(word) in plain(text))]
    assert wanted
    assert max(bottom for _, _, _, bottom in wanted) < caption_top(WIDTH, HEIGHT)


@pytest.mark.parametrize("style", sorted(styles()))
@pytest.mark.parametrize("text", [
    "Bees talk by dancing", "300,000 km every second", "سرعة الضوء ثابتة", "光速は変わらない",
    "A single extraordinarily long Donaudampfschifffahrtsgesellschaftskapitän", None])
def test_every_style_draws_every_kind_of_text(style, text):
    assert _keyframe(text, style).size == (WIDTH, HEIGHT)


def _dominant(picture: Image.Image) -> tuple[int, int, int]:
    return Counter(picture.resize((90, 160)).getdata()).most_common(1)[0][0]


def _word_shape(picture: Image.Image) -> float:
    """Width over height of the longest word tesseract reads: the typeface's proportions."""
    word, (left, top, right, bottom) = max(read_words(picture, "eng"), key=lambda w: len(w[0]))
    return (right - left) / (bottom - top)


def test_two_styles_draw_one_scene_in_different_colours_and_typefaces():
    need_tesseract("eng")
    serif, mono = (_keyframe("Brilliant light", style) for style in ("documentary", "neon"))
    first, second = _dominant(serif), _dominant(mono)
    assert sum(abs(a - b) for a, b in zip(first, second)) > 120
    assert abs(_word_shape(serif) / _word_shape(mono) - 1) > 0.1


@pytest.mark.parametrize("text,emoji", [
    ("Bees talk by dancing", "🐝"), ("Οι μέλισσες χορεύουν", "🐝"), ("Звёзды и Солнце", "⭐"),
    ("蜜蜂用舞蹈交流", "🐝"), ("The stars tonight", "⭐"), ("Starting over", None)])
def test_pictogram_is_found_in_any_of_the_listed_languages(text, emoji):
    assert pictogram(text) == emoji


@pytest.mark.parametrize("field,value,said", [
    ("typeface", "comic", "neon.typeface: must be one of sans, serif, mono"),
    ("palette", ["#fff"], "neon.palette: must list 2 or more #rrggbb colours"),
    ("layouts", ["diagonal"], "neon.layouts: must list some of"),
    ("motions", ["spin"], "neon.motions: must list some of static, zoom_in"),
    ("accent", "red", "neon.accent: must be a #rrggbb colour"),
])
def test_a_style_that_names_what_cannot_be_drawn_is_refused_in_one_line(field, value, said):
    style = dict(styles()["neon"], **{field: value})
    with pytest.raises(StyleError) as refused:
        _check_style("neon", style)
    assert said in str(refused.value) and "\n" not in str(refused.value)


def test_a_command_started_with_a_style_it_cannot_draw_exits_2_in_one_line():
    # config/styles.yaml as if edited wrongly: the command stops before doing anything.
    code = ("import sys, config.catalog as catalog\n"
            "shipped = catalog.load_table('styles')\n"
            "catalog.load_table = lambda name: dict(shipped, neon=dict(shipped['neon'], "
            "typeface='comic'))\n"
            "sys.argv = ['reelflow', 'styles']\n"
            "from flows.cli import main\nmain()\n")
    started = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert started.returncode == 2
    assert started.stderr == ("error: config/styles.yaml: neon.typeface: must be one of sans, "
                              "serif, mono\n")


def test_styles_sheet_draws_one_labelled_keyframe_per_style(tmp_path):
    listed = run(["styles"], dict(os.environ))
    assert listed.returncode == 0
    assert [line.split(":")[0] for line in listed.stdout.splitlines()] == list(styles())
    sheet = tmp_path / "sheet.png"
    drawn = run(["styles", "--sheet", str(sheet)], dict(os.environ))
    assert drawn.returncode == 0, drawn.stderr
    picture = Image.open(sheet)
    assert picture.width > len(styles()) * picture.height / 2  # the cards side by side
    refused = run(["styles", "--sheet", str(tmp_path / "missing" / "sheet.png")],
                  dict(os.environ))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --sheet:") and refused.stderr.count("\n") == 1
