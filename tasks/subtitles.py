"""Karaoke captions: scene word timings in, one ASS document out.

Narration is user text and only ever lives in the ASS file, escaped so that libass shows every
character literally. How libass reads dialogue text (ass_render.c, `ass_get_next_char` and the
event loop), verified by rendering:
- `{` opens an override block when any `}` follows it; `\\{` and `\\}` show a literal brace.
- `\\N`, `\\n`, `\\h` are a line break, a space and a no-break space. There is no escape for the
  backslash itself (`\\\\N` still breaks the line after a backslash).
- A tab is a space; a line break ends the Dialogue line.

Without fontconfig libass never falls back from one font to another, so each run of characters
names the family that has them (`{\\fn...}`, tasks/fonts.py). Those tags and the `{\\k}` karaoke
tags sit between escaped characters only: no escape ends in a bare backslash, so user text can
never join one of our tags. Styles use Encoding -1: libass then takes each line's direction from
its first strong character (any other value lays right-to-left words out left to right); a line
that starts with a word of the other direction (a speaker's name) starts with a direction mark.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from tasks import fonts
from tasks.providers.base import WordTiming
from tasks.writing import join_words

MAX_WORDS = 6
MAX_CHARS = 32  # columns: an East Asian wide character takes two
SENTENCE_END = re.compile(r"[.!?…。！？]['\"’”)\]»]*$")
# A backslash followed by an invisible ZERO WIDTH JOINER (Noto Sans has the glyph; it renders
# pixel-identical to a bare backslash) can never form `\N`, `\n`, `\h`, `\{` or `\}`.
BACKSLASH = "\\\u200d"
LINE_BREAKS = "\r\n\t\v\f\x85\u2028\u2029"
LEFT_TO_RIGHT_MARK, RIGHT_TO_LEFT_MARK = "\u200e", "\u200f"  # invisible, strong


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


def burn_filter(ass_path: Path, fonts_dir: Path = fonts.FONTS_DIR) -> str:
    """The `ass` filter that draws `ass_path` with the fonts in `fonts_dir` (the installed ones),
    escaped for a filtergraph."""
    return f"ass=filename={_filter_value(ass_path)}:fontsdir={_filter_value(fonts_dir)}"


def _filter_value(path: Path) -> str:
    # The graph parser unescapes a filter's arguments once (`[],;` end a filter), then the option
    # parser unescapes each value again (`:` ends an option): escape for the option parser first.
    inner = "".join("\\" + c if c in "\\':=" or c.isspace() else c for c in str(path))
    return "".join("\\" + c if c in "\\'[],;" or c.isspace() else c for c in inner)


def karaoke_ass(scenes: Sequence[SceneWords], *, width: int, height: int,
                speakers: Mapping[str, Speaker] | None = None, language: str = "en") -> str:
    """An ASS document whose captions highlight each word as it is spoken; a character's
    lines get the character's style (its colour) and start with its name. `language` (the
    storyboard's) picks how Han characters are drawn."""
    speakers = speakers or {}
    layout = _Layout(width, height, language)
    events = [event for scene in scenes for event in _scene_events(scene, speakers, layout)]
    return _header(layout, speakers) + "".join(events)


@dataclass(frozen=True)
class _Layout:
    width: int
    height: int
    language: str

    @property
    def size(self) -> int:
        return round(min(0.045 * self.height, 0.08 * self.width))

    @property
    def margin_x(self) -> int:
        return round(0.08 * self.width)  # clear of platform UI

    @property
    def margin_v(self) -> int:
        return round(0.12 * self.height)  # clear of platform UI

    @property
    def row(self) -> float:
        """How wide one row of caption text may be, in font sizes."""
        return (self.width - 2 * self.margin_x) / self.size


def caption_top(width: int, height: int) -> int:
    """The highest a caption of two rows reaches: pictures keep their text above it (a row
    is about a font size high; the outline and accents get a quarter more)."""
    layout = _Layout(width, height, "")
    return height - layout.margin_v - round(2 * 1.25 * layout.size)


def _ass_color(color: str) -> str:
    """#RRGGBB as ASS's &HAABBGGRR."""
    red, green, blue = color[1:3], color[3:5], color[5:7]
    return f"&H00{blue}{green}{red}".upper()


def _header(layout: _Layout, speakers: Mapping[str, Speaker]) -> str:
    size, margin_x = layout.size, layout.margin_x
    outline = max(1, round(size * 0.08))
    margin_v = layout.margin_v
    family = fonts.default_family()

    def style(name: str, spoken: str) -> str:
        # Colours are &HAABBGGRR: PrimaryColour = spoken, SecondaryColour (white) = to come.
        return (f"Style: {name},{family},{size},{spoken},&H00FFFFFF,&H00000000,&H80000000,"
                f"-1,0,0,0,100,100,0,0,1,{outline},0,2,{margin_x},{margin_x},{margin_v},-1\n")

    # The narrator's words turn yellow as they are spoken; a character's, its own colour.
    styles = style("Caption", "&H0000FFFF") + "".join(
        style(_style(speaker_id), _ass_color(speaker.color))
        for speaker_id, speaker in speakers.items())
    return (
        "[Script Info]\nScriptType: v4.00+\n"
        f"PlayResX: {layout.width}\nPlayResY: {layout.height}\n"
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


def _scene_events(scene: SceneWords, speakers: Mapping[str, Speaker],
                  layout: _Layout) -> list[str]:
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
        syllables = [(marks[i + 1] - marks[i], word.text.rstrip() if i else word.text.strip())
                     for i, word in enumerate(chunk)]
        if marks[0] > start:  # an empty syllable until the first word is spoken
            syllables.insert(0, (marks[0] - start, ""))
        style = "Caption"
        if owners[index] in speakers:
            # The name is a syllable of no length: drawn in the speaker's colour from the start.
            style = _style(owners[index])
            syllables.insert(0, (0, speakers[owners[index]].name + ":"))
        if end > start:
            text = _line_text(syllables, layout)
            events.append(f"Dialogue: 0,{_clock(start)},{_clock(end)},{style},,0,0,0,,{text}\n")
    return events


@dataclass
class _Piece:
    """One piece of a caption line's ASS text."""

    ass: str  # an escaped character, what joins two words (a space or nothing), or a tag
    char: str = ""  # the character it shows
    karaoke: int | None = None  # set on a syllable's first piece: its length, centiseconds
    family: fonts.Family | None = None  # the font family that draws `char`


def _line_text(syllables: Sequence[tuple[int, str]], layout: _Layout) -> str:
    """One caption line as ASS text: each syllable (centiseconds, user text) after its `\\k`
    tag, each run of characters in the family that draws it, joined as the script writes."""
    pieces: list[_Piece] = []
    joins: list[int] = []  # the pieces between two syllables
    previous = ""
    for length, text in syllables:
        shown = [escaped for escaped in map(escape_text, text.lstrip()) if escaped]
        word = "".join(map(_shown, shown))
        if not shown:  # a syllable of time alone: nothing shown
            pieces.append(_Piece("", karaoke=length))
            continue
        if previous:
            space = (" " if text[:1].isspace()
                     else join_words([previous, word])[len(previous):-len(word)])
            joins.append(len(pieces))
            pieces.append(_Piece(space, space))
        pieces += [_Piece(escaped, _shown(escaped), length if i == 0 else None)
                   for i, escaped in enumerate(shown)]
        previous = word
    mark = _direction_mark("".join(piece.char for piece in pieces))
    if mark:
        pieces.insert(0, _Piece(mark, mark))
        joins = [join + 1 for join in joins]
    drawn = [piece for piece in pieces if piece.char]
    for piece, family in zip(drawn, fonts.families("".join(p.char for p in drawn),
                                                   layout.language)):
        piece.family = family
    _break_unspaced(pieces, joins, layout.row)
    out, current = [], fonts.default_family()
    for piece in pieces:
        tags = "" if piece.karaoke is None else f"\\k{piece.karaoke}"
        if piece.family is not None and piece.family.name != current:
            tags, current = tags + f"\\fn{piece.family.name}", piece.family.name
        out.append(f"{{{tags}}}{piece.ass}" if tags else piece.ass)
    return "".join(out)


def _break_unspaced(pieces: list[_Piece], joins: list[int], row: float) -> None:
    """libass wraps a line only at spaces: a line too wide for one row that has words joined
    without a space gets a line break between two words, where the rows come out most even."""
    widths = [piece.family.width(piece.char) if piece.family else 0.0 for piece in pieces]
    total = sum(widths)
    if total <= row or all(pieces[join].char for join in joins):
        return
    before = list(accumulate(widths, initial=0.0))
    middle = min(joins, key=lambda join: abs(before[join] - total / 2))
    pieces[middle] = _Piece("\\N")


def _direction_mark(line: str) -> str:
    """The mark that gives `line` the direction most of its letters have, where its first
    letter (a speaker's name, a quoted word) would give it the other one; else nothing."""
    strong = [unicodedata.bidirectional(char) for char in line]
    strong = [kind == "L" for kind in strong if kind in ("L", "R", "AL")]
    if not strong or strong[0] == (sum(strong) * 2 >= len(strong)):
        return ""
    return RIGHT_TO_LEFT_MARK if strong[0] else LEFT_TO_RIGHT_MARK


def _shown(escaped: str) -> str:
    """The character an escaped character shows: `\\{` shows `{`, BACKSLASH shows `\\`."""
    return escaped[1] if escaped in ("\\{", "\\}") else escaped[0]


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in text)


def _chunks(words: list[WordTiming]) -> list[list[WordTiming]]:
    """Short caption lines: end at a sentence end, or before MAX_WORDS / MAX_CHARS is passed."""
    chunks: list[list[WordTiming]] = []
    current: list[WordTiming] = []
    for word in words:
        text = word.text.strip()
        columns = _columns(join_words([w.text.rstrip() for w in [*current, word]]).strip())
        if current and (len(current) >= MAX_WORDS or columns > MAX_CHARS):
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
