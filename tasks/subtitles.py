"""Karaoke captions: scene word timings in, one ASS document out.

Narration is user text and only ever lives in the ASS file, escaped so that libass shows every
character literally. How libass reads dialogue text (ass_render.c, `ass_get_next_char` and the
event loop), verified by rendering:
- `{` opens an override block when any `}` follows it; `\\{` and `\\}` show a literal brace.
- `\\N`, `\\n`, `\\h` are a line break, a space and a no-break space. There is no escape for the
  backslash itself (`\\\\N` still breaks the line after a backslash).
- A tab is a space; a line break ends the Dialogue line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import font_roboto

from tasks.providers.base import WordTiming

FONTS_DIR = Path(font_roboto.__file__).parent / "files"
FONT_FAMILY = "Roboto"

MAX_WORDS = 6
MAX_CHARS = 32
HOLD = 0.5  # seconds the last caption of a scene stays up after its last word
SENTENCE_END = re.compile(r"[.!?…。！？]['\"’”)\]»]*$")
# A backslash followed by an invisible ZERO WIDTH JOINER (Roboto has the glyph; it renders
# pixel-identical to a bare backslash) can never form `\N`, `\n`, `\h`, `\{` or `\}`.
BACKSLASH = "\\\u200d"
LINE_BREAKS = "\r\n\t\v\f\x85\u2028\u2029"


@dataclass(frozen=True)
class SceneWords:
    start: float  # the scene's offset in the final video, seconds
    length: float  # how long the scene is on screen; its captions never outlive it
    words: Sequence[WordTiming]  # relative to the scene's start


def escape_text(text: str) -> str:
    """User text as ASS dialogue text that libass shows literally and never parses as tags."""
    out = []
    for char in text:
        if char == "\\":
            out.append(BACKSLASH)
        elif char in "{}":
            out.append("\\" + char)
        elif char in LINE_BREAKS:
            out.append(" ")  # a caption is one flowing line; libass wraps it
        elif unicodedata.category(char) not in ("Cc", "Cs"):  # controls have no visible form
            out.append(char)
    return "".join(out)


def burn_filter(ass_path: Path) -> str:
    """The `ass` filter that draws `ass_path` with the bundled fonts, escaped for a filtergraph."""
    return f"ass=filename={_filter_value(ass_path)}:fontsdir={_filter_value(FONTS_DIR)}"


def _filter_value(path: Path) -> str:
    # The graph parser unescapes a filter's arguments once (`[],;` end a filter), then the option
    # parser unescapes each value again (`:` ends an option): escape for the option parser first.
    inner = "".join("\\" + c if c in "\\':=" or c.isspace() else c for c in str(path))
    return "".join("\\" + c if c in "\\'[],;" or c.isspace() else c for c in inner)


def karaoke_ass(scenes: Sequence[SceneWords], *, width: int, height: int) -> str:
    """An ASS document whose captions highlight each word as it is spoken."""
    events = [event for scene in scenes for event in _scene_events(scene)]
    return _header(width, height) + "".join(events)


def _header(width: int, height: int) -> str:
    size = round(min(0.045 * height, 0.08 * width))
    outline = max(1, round(size * 0.08))
    margin_x, margin_v = round(0.08 * width), round(0.12 * height)  # clear of platform UI
    # Colours are &HAABBGGRR: PrimaryColour (yellow) = spoken, SecondaryColour (white) = to come.
    return (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {width}\nPlayResY: {height}\n"
        "WrapStyle: 0\nScaledBorderAndShadow: yes\nYCbCr Matrix: None\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"Style: Caption,{FONT_FAMILY},{size},&H0000FFFF,&H00FFFFFF,&H00000000,&H80000000,"
        f"-1,0,0,0,100,100,0,0,1,{outline},0,2,{margin_x},{margin_x},{margin_v},1\n\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )


def _scene_events(scene: SceneWords) -> list[str]:
    words = [w for w in scene.words if escape_text(w.text.strip())]
    chunks = _chunks(words)
    scene_end = _cs(scene.start + scene.length)
    events, carried = [], []
    for index, chunk in enumerate(chunks):
        chunk = carried + chunk
        start = _cs(scene.start + chunk[0].start)
        following = chunks[index + 1][0].start if index + 1 < len(chunks) else chunk[-1].end + HOLD
        end = min(scene_end, _cs(scene.start + following))
        if end <= start and index + 1 < len(chunks):
            carried = chunk  # no time of its own before the next line starts: shown with it
            continue
        carried = []
        # Word i is highlighted from its own start until the next word's: gaps are counted too.
        marks = [_cs(scene.start + w.start) for w in chunk] + [_cs(scene.start + chunk[-1].end)]
        marks = [min(max(mark, start), end) for mark in marks]
        for i in range(1, len(marks)):
            marks[i] = max(marks[i], marks[i - 1])
        text = " ".join(
            f"{{\\k{marks[i + 1] - marks[i]}}}{escape_text(word.text.strip())}"
            for i, word in enumerate(chunk)
        )
        if end > start:
            events.append(f"Dialogue: 0,{_clock(start)},{_clock(end)},Caption,,0,0,0,,{text}\n")
    return events


def _chunks(words: list[WordTiming]) -> list[list[WordTiming]]:
    """Short caption lines: end at a sentence end, or before MAX_WORDS / MAX_CHARS is passed."""
    chunks: list[list[WordTiming]] = []
    current: list[WordTiming] = []
    for word in words:
        text = word.text.strip()
        chars = sum(len(w.text.strip()) + 1 for w in current) + len(text)
        if current and (len(current) >= MAX_WORDS or chars > MAX_CHARS):
            chunks.append(current)
            current = []
        current.append(word)
        if SENTENCE_END.search(text):
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


def _cs(seconds: float) -> int:
    return max(0, round(seconds * 100))


def _clock(centiseconds: int) -> str:
    seconds, cs = divmod(centiseconds, 100)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{cs:02d}"
