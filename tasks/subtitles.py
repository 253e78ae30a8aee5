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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import font_roboto

from tasks.providers.base import WordTiming

FONTS_DIR = Path(font_roboto.__file__).parent / "files"
FONT_FAMILY = "Roboto"

MAX_WORDS = 6
MAX_CHARS = 32
SENTENCE_END = re.compile(r"[.!?…。！？]['\"’”)\]»]*$")
# A backslash followed by an invisible ZERO WIDTH JOINER (Roboto has the glyph; it renders
# pixel-identical to a bare backslash) can never form `\N`, `\n`, `\h`, `\{` or `\}`.
BACKSLASH = "\\\u200d"
LINE_BREAKS = "\r\n\t\v\f\x85\u2028\u2029"


@dataclass(frozen=True)
class Turn:
    """One line of a scene: who says it, from which of the scene's words, and when."""

    speaker: str  # a character id, or "narrator"
    first_word: int  # index of the line's first word in the scene's words
    start: float  # relative to the scene's start, seconds
    end: float


@dataclass(frozen=True)
class Speaker:
    """How a character's lines look: its name shown before them, in its colour."""

    name: str
    color: str  # "#RRGGBB"


@dataclass(frozen=True)
class SceneWords:
    start: float  # the scene's offset in the final video, seconds
    length: float  # how long the scene is on screen; its captions never outlive it
    words: Sequence[WordTiming]  # relative to the scene's start
    turns: Sequence[Turn] = ()  # none: the narrator says every word


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


def karaoke_ass(scenes: Sequence[SceneWords], *, width: int, height: int,
                speakers: Mapping[str, Speaker] | None = None) -> str:
    """An ASS document whose captions highlight each word as it is spoken; a character's
    lines get the character's style (its colour) and start with its name."""
    speakers = speakers or {}
    events = [event for scene in scenes for event in _scene_events(scene, speakers)]
    return _header(width, height, speakers) + "".join(events)


def _ass_color(color: str) -> str:
    """#RRGGBB as ASS's &HAABBGGRR."""
    red, green, blue = color[1:3], color[3:5], color[5:7]
    return f"&H00{blue}{green}{red}".upper()


def _header(width: int, height: int, speakers: Mapping[str, Speaker]) -> str:
    size = round(min(0.045 * height, 0.08 * width))
    outline = max(1, round(size * 0.08))
    margin_x, margin_v = round(0.08 * width), round(0.12 * height)  # clear of platform UI

    def style(name: str, spoken: str) -> str:
        # Colours are &HAABBGGRR: PrimaryColour = spoken, SecondaryColour (white) = to come.
        return (f"Style: {name},{FONT_FAMILY},{size},{spoken},&H00FFFFFF,&H00000000,&H80000000,"
                f"-1,0,0,0,100,100,0,0,1,{outline},0,2,{margin_x},{margin_x},{margin_v},1\n")

    # The narrator's words turn yellow as they are spoken; a character's, its own colour.
    styles = style("Caption", "&H0000FFFF") + "".join(
        style(_style(speaker_id), _ass_color(speaker.color))
        for speaker_id, speaker in speakers.items())
    return (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {width}\nPlayResY: {height}\n"
        "WrapStyle: 0\nScaledBorderAndShadow: yes\nYCbCr Matrix: None\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
        f"{styles}\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )


def _style(speaker: str) -> str:
    return f"Caption-{speaker}"  # ids are [a-z0-9_-]: safe in a style name


def _scene_events(scene: SceneWords, speakers: Mapping[str, Speaker]) -> list[str]:
    """Caption lines of a scene; a line never mixes two speakers' words."""
    starts = {turn.first_word: turn.speaker for turn in scene.turns}
    chunks, owners, speaker = [], [], None
    current: list[WordTiming] = []
    for index, word in enumerate(scene.words):
        if index in starts and current:
            chunks += _chunks(current)
            owners += [speaker] * (len(chunks) - len(owners))
            current = []
        speaker = starts.get(index, speaker)
        if escape_text(word.text.strip()):
            current.append(word)
    chunks += _chunks(current)
    owners += [speaker] * (len(chunks) - len(owners))
    scene_end = _cs(scene.start + scene.length)
    events, carried = [], []
    for index, chunk in enumerate(chunks):
        chunk = carried + chunk
        # A scene's captions cover it whole: the first is up from the scene's start, each stays
        # until the next one, the last until the scene ends (its narration plus a short pad).
        start = _cs(scene.start + chunk[0].start) if events else _cs(scene.start)
        following = chunks[index + 1][0].start if index + 1 < len(chunks) else scene.length
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
        if marks[0] > start:  # an empty syllable until the first word is spoken
            text = f"{{\\k{marks[0] - start}}}" + text
        style = "Caption"
        if owners[index] in speakers:
            # The name is a syllable of no length: drawn in the speaker's colour from the start.
            style = _style(owners[index])
            text = f"{{\\k0}}{escape_text(speakers[owners[index]].name)}: " + text
        if end > start:
            events.append(f"Dialogue: 0,{_clock(start)},{_clock(end)},{style},,0,0,0,,{text}\n")
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
