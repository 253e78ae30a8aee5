"""Captions in every script, drawn with no system fonts (ffmpeg gets an empty fontconfig, so
libass has only the installed fonts): each run of characters names a family whose character map
has them, libass draws no missing-glyph box and leaves no run out, lines of unspaced words wrap
inside the frame, and right-to-left lines read and light up from the right."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from fontTools.ttLib.tables._g_l_y_f import Glyph

from tasks import fonts
from tasks.ffmpeg import ffmpeg_exe
from tasks.providers.base import WordTiming
from tasks.subtitles import MAX_CHARS, SceneWords, Speaker, Turn, burn_filter, karaoke_ass
from tasks.writing import join_words

WIDTH, HEIGHT = 270, 480  # portrait, the default aspect
FPS = 10
BACKGROUND = (0x20, 0x20, 0x40)
# A caption line in each script: the storyboard's language, the words as speech gives them.
LINES = {
    "latin": ("fr", ["Ça", "façade", "naïve,", "l'été."]),
    "greek": ("el", ["Γειά", "σου,", "κόσμε!"]),
    "cyrillic": ("ru", ["Привет,", "мир!"]),
    "arabic": ("ar", ["مرحبا", "بالعالم،", "2024"]),
    "hebrew": ("he", ["שָׁלוֹם", "עולם"]),  # with vowel points
    "devanagari": ("hi", ["नमस्ते", "दुनिया।"]),
    "thai": ("th", ["สวัสดี", "ชาว", "โลก"]),
    "chinese": ("zh", ["你好", "，", "世界", "。"]),
    "japanese": ("ja", ["富士山", "は", "なぜ", "美しい", "のか", "？"]),
    "korean": ("ko", ["안녕하세요,", "세계!"]),
    "emoji": ("en", ["Bees", "🐝", "love", "🌸❤️", "👩‍👧", "#1"]),
}
# Our override blocks, a line break of ours, an escaped character, any other character.
TOKEN = re.compile(r"\{([^}]*)\}|\\N|\\[{}]|\\\u200d|.", re.S)
DIRECTION_MARKS = "\u200e\u200f"


def words(texts: list[str]) -> list[WordTiming]:
    return [WordTiming(text=t, start=float(i), end=i + 0.8) for i, t in enumerate(texts)]


def caption(texts: list[str], language: str, speaker: str | None = None,
            width: int = WIDTH, height: int = HEIGHT) -> str:
    speakers = {"ada": Speaker(speaker, "#FFFF00")} if speaker else None  # yellow, as spoken
    turns = (Turn("ada", 0, 0.0, len(texts)),) if speaker else ()
    scene = SceneWords(0.0, len(texts) + 1.0, words(texts), turns)
    return karaoke_ass([scene], width=width, height=height, speakers=speakers, language=language)


def header(ass: str) -> str:
    return ass[:ass.index("Dialogue:")]


def dialogue_texts(ass: str) -> list[str]:
    return [line.split(",", 9)[9] for line in ass.splitlines() if line.startswith("Dialogue:")]


def tokens(ass: str, text: str) -> list[tuple[str, str | None, str]]:
    """A caption line as libass reads it: (ASS text, the family drawing it or None for a tag
    or line break, the character it shows)."""
    family = re.search(r"^Style: Caption[^,]*,([^,]+),", ass, re.M).group(1)
    out = []
    for match in TOKEN.finditer(text):
        raw = match.group(0)
        if match.group(1) is not None:
            assert re.fullmatch(r"(\\k\d+|\\fn[^\\]+)+", match.group(1)), raw  # ours only
            family = ([family] + re.findall(r"\\fn([^\\]+)", match.group(1)))[-1]
            out.append((raw, None, ""))
        elif raw == "\\N":
            out.append((raw, None, ""))
        else:
            out.append((raw, family, raw[1] if raw in ("\\{", "\\}") else raw[0]))
    return out


def runs(toks: list[tuple[str, str | None, str]]) -> list[tuple[str, list[int]]]:
    """The runs of a line: each family and the indexes of the characters it draws."""
    out: list[tuple[str, list[int]]] = []
    for index, (_, family, _) in enumerate(toks):
        if family is None:
            continue
        if out and out[-1][0] == family:
            out[-1][1].append(index)
        else:
            out.append((family, [index]))
    return out


@cache
def character_maps() -> dict[str, frozenset[int]]:
    """Each installed family's code points, read from the font files themselves."""
    maps: dict[str, set[int]] = {}
    for path in fonts.FONTS_DIR.iterdir():
        font = TTFont(path, lazy=True)
        maps.setdefault(font["name"].getDebugName(1), set()).update(font.getBestCmap())
    return {family: frozenset(chars) for family, chars in maps.items()}


def installed_family(file: str) -> str:
    """The family of the installed font file whose name starts with `file`."""
    path, = fonts.FONTS_DIR.glob(f"{file}*")
    return TTFont(path, lazy=True)["name"].getDebugName(1)


@pytest.fixture(scope="module")
def no_system_fonts(tmp_path_factory) -> dict[str, str]:
    """ffmpeg's environment: a fontconfig that knows no fonts."""
    config = tmp_path_factory.mktemp("fontconfig") / "empty.conf"
    config.write_text("<fontconfig></fontconfig>\n", encoding="utf-8")
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


@pytest.fixture(scope="module")
def blank_boxes(tmp_path_factory) -> Path:
    """The installed fonts with their missing-glyph box (glyph 0) drawn as nothing, nothing
    else changed: a line libass draws the same with these fonts draws no box."""
    folder = tmp_path_factory.mktemp("blank-boxes")
    for path in sorted(fonts.FONTS_DIR.iterdir()):
        font = TTFont(path, recalcBBoxes=False, recalcTimestamp=False)
        font["glyf"][font.getGlyphOrder()[0]] = Glyph()
        font.flavor = None
        font.save(folder / f"{path.stem}.ttf")
    return folder


def frames(ass: str, workdir: Path, env: dict[str, str], fonts_dir: Path = fonts.FONTS_DIR,
           seconds: float = 0.0) -> np.ndarray:
    """Every frame (FPS a second) that libass draws of `ass` over a plain background."""
    width, height = (int(re.search(f"^PlayRes{axis}: (\\d+)", ass, re.M).group(1)) for axis in "XY")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "captions.ass"
    path.write_text(ass, encoding="utf-8")
    seconds = seconds or max(clock(line.split(",")[2]) for line in ass.splitlines()
                             if line.startswith("Dialogue:"))
    color = "0x{:02x}{:02x}{:02x}".format(*BACKGROUND)
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
         "-f", "lavfi", "-i", f"color=c={color}:s={width}x{height}:r={FPS}:d={seconds}",
         "-vf", burn_filter(path, fonts_dir), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, env=env, check=True)
    return np.frombuffer(completed.stdout, np.uint8).reshape(-1, height, width, 3)


def clock(value: str) -> float:
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def stamp(seconds: float) -> str:
    centiseconds = round(seconds * 100)
    return f"0:00:{centiseconds // 100:02d}.{centiseconds % 100:02d}"


def glyph_problems(lines: dict[str, tuple[str, str]], workdir: Path, env: dict[str, str],
                   blank: Path, fonts_dir: Path = fonts.FONTS_DIR) -> dict[str, list[str]]:
    """What libass draws wrong in each line (name: (its ASS document, its text)): a missing
    glyph's box anywhere, or a run of characters that draws nothing (a family it cannot find).

    Each line is drawn once as it is, and once per run with that run made transparent (the
    layout stays): a run that draws something changes the frame. Every line is also drawn with
    the fonts whose box is blank: any box drawn makes the two frames differ."""
    slots: list[tuple[str, str, str]] = []
    for name, (ass, text) in lines.items():
        toks = tokens(ass, text)
        slots.append((name, "", text))
        for family, indexes in runs(toks):
            hidden = [raw for raw, _, _ in toks]
            hidden[indexes[0]] = "{\\alpha&HFF&}" + hidden[indexes[0]]
            hidden[indexes[-1]] += "{\\alpha&H00&}"
            shown = "".join(toks[i][2] for i in indexes)
            if not shown.strip(" " + DIRECTION_MARKS):
                continue  # nothing to see
            slots.append((name, f"the {family} run {shown!r}", "".join(hidden)))
    # One slot of 0.2 s per drawing; its second frame is the one compared.
    document = header(next(iter(lines.values()))[0]) + "".join(
        f"Dialogue: 0,{stamp(i * 0.2)},{stamp(i * 0.2 + 0.2)},Caption,,0,0,0,,{text}\n"
        for i, (_, _, text) in enumerate(slots))
    drawn = frames(document, workdir / "drawn", env, fonts_dir)
    boxless = frames(document, workdir / "blank", env, blank)
    problems: dict[str, list[str]] = {}
    line_frame = 0
    for i, (name, run, _) in enumerate(slots):
        frame = 2 * i + 1
        if not run:
            line_frame = frame
            if not np.array_equal(drawn[frame], boxless[frame]):
                problems.setdefault(name, []).append("a missing glyph's box is drawn")
        elif np.array_equal(drawn[frame], drawn[line_frame]):
            problems.setdefault(name, []).append(f"{run} draws nothing")
    return problems


def yellow(frame: np.ndarray) -> np.ndarray:
    red, green, blue = (frame[..., c].astype(int) for c in range(3))
    return (red > 180) & (green > 180) & (blue < 100)


def test_every_character_is_in_the_family_its_run_names():
    used = set()
    for script, (language, texts) in LINES.items():
        ass = caption(texts, language)
        text, = dialogue_texts(ass)
        toks = tokens(ass, text)
        assert "".join(char for _, _, char in toks) == join_words(texts), script
        for _, family, char in toks:
            if family is not None:
                assert ord(char) in character_maps()[family], (script, char, family)
                used.add(family)
    assert used == set(character_maps())  # the lines exercise every installed family


def test_every_line_is_drawn_without_a_box_or_a_missing_run(tmp_path, no_system_fonts,
                                                            blank_boxes):
    lines = {}
    for script, (language, texts) in LINES.items():
        ass = caption(texts, language)
        lines[script], = ((ass, text) for text in dialogue_texts(ass))
    assert glyph_problems(lines, tmp_path, no_system_fonts, blank_boxes) == {}


def test_the_glyph_check_finds_boxes_from_one_font_and_runs_of_a_missing_font(
        tmp_path, no_system_fonts, blank_boxes):
    """The check can fail: one font for every character (as with Roboto alone) draws boxes,
    and without the Japanese font file libass draws nothing of the run that names it."""
    ass = caption(LINES["japanese"][1], "ja")
    text, = dialogue_texts(ass)
    one_font = re.sub(r"\\fn[^\\}]+", "", text)
    assert glyph_problems({"one font": (ass, one_font)}, tmp_path / "one", no_system_fonts,
                          blank_boxes) == {"one font": ["a missing glyph's box is drawn"]}

    partial, partial_blank = tmp_path / "fonts", tmp_path / "fonts-blank"
    shutil.copytree(fonts.FONTS_DIR, partial, ignore=shutil.ignore_patterns("noto-sans-jp-*"))
    shutil.copytree(blank_boxes, partial_blank, ignore=shutil.ignore_patterns("noto-sans-jp-*"))
    problems = glyph_problems({"no Japanese font": (ass, text)}, tmp_path / "partial",
                              no_system_fonts, partial_blank, partial)
    assert problems == {"no Japanese font": [
        f"the {installed_family('noto-sans-jp-japanese')} run '富士山はなぜ美しいのか？' draws nothing"]}


@pytest.mark.parametrize("language, file", [
    ("ja", "noto-sans-jp-japanese"), ("ja-JP", "noto-sans-jp-japanese"),
    ("zh", "noto-sans-sc-chinese"), ("en", "noto-sans-sc-chinese"),
    ("ko", "noto-sans-jp-japanese")])  # the Korean font file has Hangul only
def test_han_characters_are_drawn_the_way_the_language_writes_them(language, file):
    ass = caption(["日本", "語"], language)
    text, = dialogue_texts(ass)
    assert {family for _, family, _ in tokens(ass, text) if family} == {installed_family(file)}


def test_text_fonts_draw_digits_and_signs_the_emoji_font_also_has():
    ass = caption(["#1", "©", "🐝"], "en")
    text, = dialogue_texts(ass)
    families = {char: family for _, family, char in tokens(ass, text) if family}
    sans, emoji = installed_family("noto-sans-latin-700"), installed_family("noto-emoji")
    assert families == {"#": sans, "1": sans, " ": sans, "©": sans, "🐝": emoji}


def test_user_text_in_any_script_never_becomes_a_tag():
    texts = ["{\\fnNoto Emoji}x", "\\😀", "שלום{", "}\\N日本", "\\{\\k99}", "مرحبا\\"]
    ass = caption(texts, "ja")
    lines = ["".join(char for _, _, char in tokens(ass, text)) for text in dialogue_texts(ass)]
    # tokens() fails on any block that is not ours; a direction mark of ours may lead a line.
    assert " ".join(lines).replace("\u200f", "") == " ".join(texts)


def test_unspaced_lines_count_wide_characters_twice_and_end_between_words():
    texts = ["富士山", "は", "日本列島", "で", "一番", "高い", "山", "として", "知られて", "いる"]
    ass = caption(texts, "ja")
    lines = ["".join(char for _, _, char in tokens(ass, text)) for text in dialogue_texts(ass)]
    assert len(lines) > 1 and "".join(lines) == "".join(texts)
    assert all(sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line) <= MAX_CHARS
               for line in lines)
    word_ends = {len("".join(texts[:i])) for i in range(len(texts) + 1)}
    assert all(len("".join(lines[:i])) in word_ends for i in range(len(lines)))


def test_a_line_of_unspaced_words_too_wide_for_the_frame_breaks_between_words(
        tmp_path, no_system_fonts):
    texts = ["富士山", "は", "日本一", "高くて", "美しい", "山です"]  # 16 wide characters
    ass = caption(texts, "ja")
    text, = dialogue_texts(ass)
    rows = "".join("\n" if raw == "\\N" else char for raw, _, char in tokens(ass, text))
    assert rows.split("\n")[0] in {"".join(texts[:i]) for i in range(1, len(texts))}
    assert rows.replace("\n", "") == "".join(texts) and rows.count("\n") == 1

    def outside_margins(document: str) -> bool:
        """Whether the caption is drawn outside the style's side margins (its outline aside)."""
        frame = frames(document, tmp_path, no_system_fonts, seconds=1.0)[5]
        ink = np.abs(frame.astype(int) - BACKGROUND).max(axis=2) > 40  # not the background
        margin = round(0.08 * WIDTH) - 3
        assert ink.any()
        return ink[:, :margin].any() or ink[:, -margin:].any()

    assert not outside_margins(ass)
    assert outside_margins(ass.replace("\\N", ""))  # the check can fail: unbroken, it is


@pytest.mark.parametrize("language, texts", [
    ("ar", ["تعلمنا", "اليوم", "عن", "Python", "في", "الصف"]),
    ("he", ["למדנו", "היום", "על", "Python", "בכיתה"])])
@pytest.mark.parametrize("speaker", [None, "Ada"])
def test_right_to_left_words_read_and_light_up_from_the_right(tmp_path, no_system_fonts,
                                                              language, texts, speaker):
    """Each word lights up as it is spoken (word i at i seconds): the lit part of the line grows
    leftwards from a fixed right edge, also across the Latin word and after a speaker's name."""
    ass = caption(texts, language, speaker, width=640, height=360)  # one row: landscape
    drawn = frames(ass, tmp_path, no_system_fonts)
    edges = []
    for second in range(len(texts)):
        columns = np.nonzero(yellow(drawn[second * FPS + FPS // 2]).any(axis=0))[0]
        edges.append((columns.min(), columns.max()))
    lefts, rights = zip(*edges)
    assert all(a > b for a, b in zip(lefts, lefts[1:])), edges
    assert max(rights) - min(rights) <= 1, edges
