"""A user's script read as a person wrote it, in plain text or markdown.

The title is a `title:` field of a front matter (between `---` lines), else a heading that opens
the script, else a first line standing alone as a title does (a paragraph of one line, no
sentence end, more paragraphs after it); it is never narrated. Every other heading starts a new
scene and is not said; a paragraph is a scene. Markdown's markup (emphasis, bullets, quotes,
links, code) is removed from what is narrated and shown; its characters stay where they are not
markup (`5 * 3`, `snake_case`, a bare URL). A scene's first words in strong emphasis (**so**)
are its on-screen text.

With a cast, a line of the form `Name: text` is that character's (by id or name, any case), and
the lines after it until the next speaker continue it; other lines are the narrator's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from tasks.storyboard import MAX_TITLE_CHARS, NARRATOR, Character, Line

SPEAKER_LINE = re.compile(r"^([^:]{1,40}?)\s*:\s+(\S.*)$")
# After . ! ? … and a space, or after 。！？ (no space follows them) unless a quote closes.
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])(?![」』）”’])\s*")
# A line standing alone that ends like this is a sentence, not a title.
CLOSING = re.compile(r"[.!?…:;,。！？：；，]['\"’”)\]»」』]*$")

FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---(?:\n|\Z)", re.S)
HEADING = re.compile(r"^#{1,6}(?:\s+(.*?))?(?:\s+#+)?$")  # `#hashtag` has no space: no heading
UNDERLINE = re.compile(r"^(?:=+|-+)$")  # under a line that is no sentence: a heading
RULE = re.compile(r"^([-*_])(?:\s*\1){2,}$")
FENCE = re.compile(r"^(`{3,}|~{3,})")
QUOTE = re.compile(r"^(?:>\s?)+")
BULLET = re.compile(r"^(?:[-*+]|\d{1,3}[.)])\s+")
LINK_DEFINITION = re.compile(r"^\[[^\]]+\]:\s+\S+")

ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # markdown's backslash escapes: ASCII punctuation
CODE = re.compile(r"(`+)(.+?)\1")
URL = re.compile(r"<?(https?://[^\s>]+)>?")
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])")
# Markers hugging the text they mark, outside words (`5 * 3`, `2*3*4` and `snake_case` keep
# their characters); stars may touch a word of a script written without spaces (`我**爱**你`).
EMPHASIS = (re.compile(r"(?<![A-Za-z0-9*~])(\*\*|\*|~~)(?=\S)(.+?)(?<=\S)\1(?![A-Za-z0-9*~])"),
            re.compile(r"(?<!\w)(__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)"))
# Characters that must come through literally (escaped, or inside code and URLs) wait in the
# private use area, which user text never has (storyboard refuses it).
PRIVATE = 0xE000


class ScriptError(ValueError):
    """A script that cannot be narrated: a line names someone who is not in the cast, or
    nothing is left to say."""


@dataclass(frozen=True)
class Script:
    title: str | None
    scenes: list[list[str]]  # each scene's lines, markup removed
    shown: list[str | None]  # each scene's first words in strong emphasis, markup removed


def read_script(script: str, cast: list[Character] = ()) -> Script:
    """The script's title and scenes. With a cast, a first line naming a speaker is dialogue."""
    title, text = _front_matter(script)
    scenes: list[list[str]] = []
    shown: list[str | None] = []
    paragraph: list[str] = []
    strong: list[str] = []
    fence = None

    def end_paragraph() -> None:
        nonlocal paragraph, strong
        if paragraph:
            scenes.append(paragraph)
            shown.append(strong[0] if strong else None)
            paragraph, strong = [], []

    def heading(text: str) -> None:
        nonlocal title
        end_paragraph()
        if not scenes and title is None and text:  # nothing said yet: this heading is the title
            title = text

    for raw in text.splitlines():
        line = QUOTE.sub("", raw.strip())
        if fence:
            fence = None if line.startswith(fence) else fence  # code is never narrated
        elif match := FENCE.match(line):
            end_paragraph()
            fence = match[1]
        elif match := HEADING.match(line):
            heading(_plain(match[1] or ""))
        elif UNDERLINE.match(line) and paragraph and not CLOSING.search(paragraph[-1]):
            heading(paragraph.pop())  # only the line above: a sentence before it is still said
        elif not line or RULE.match(line):
            end_paragraph()
        elif not LINK_DEFINITION.match(line) and (plain := _plain(BULLET.sub("", line))):
            paragraph.append(plain)
            strong += _strong(line, plain, cast)
    end_paragraph()
    if title is None and len(scenes) > 1 and _stands_as_title(scenes[0], cast):
        title, scenes, shown = scenes[0][0], scenes[1:], shown[1:]
    return Script(title=title and title[:MAX_TITLE_CHARS], scenes=scenes, shown=shown)


def script_scenes(script: str, cast: list[Character]) -> list[list[Line]]:
    """The script's scenes, each as its lines. Without a cast every paragraph is narration."""
    scenes = read_script(script, cast).scenes
    if not scenes:
        raise ScriptError("script: nothing to narrate (only a title, headings, markup or code)")
    if not cast:
        return [[Line(text=_fold(" ".join(scene)))] for scene in scenes]
    speakers = {key.casefold(): c.id for c in cast for key in (c.id, c.name)}
    result = []
    for scene in scenes:
        lines: list[tuple[str, str]] = []
        for text in scene:
            match = SPEAKER_LINE.match(text)
            if match:
                name = match[1].strip()
                if name.casefold() not in speakers:
                    shown = text if len(text) <= 60 else text[:57] + "..."
                    raise ScriptError(f"script: the line {shown!r} names {name!r}, who is not in "
                                      f"the cast ({', '.join(c.id for c in cast)})")
                lines.append((speakers[name.casefold()], match[2]))
            elif lines:
                lines[-1] = (lines[-1][0], f"{lines[-1][1]} {text}")
            else:
                lines.append((NARRATOR, text))
        result.append([Line(speaker=speaker, text=_fold(text)) for speaker, text in lines])
    return result


def script_text(script: Script) -> str:
    """The scenes as plain text, a blank line between two: what a planner is asked to keep."""
    return "\n\n".join("\n".join(scene) for scene in script.scenes)


def sentences(text: str) -> list[str]:
    """The sentences of `text`."""
    return [sentence for sentence in SENTENCE_END.split(text.strip()) if sentence]


def _front_matter(script: str) -> tuple[str | None, str]:
    """The front matter's title (if it has one) and the script after it. A `---` block that is
    not a YAML mapping is the script's own text."""
    match = FRONT_MATTER.match(script)
    try:
        fields = yaml.safe_load(match[1]) if match else None
    except yaml.YAMLError:
        fields = None
    if not isinstance(fields, dict):
        return None, script
    title = _plain(str(fields.get("title") or ""))
    return title or None, script[match.end():]


def _stands_as_title(paragraph: list[str], cast: list[Character]) -> bool:
    """A paragraph of one line that does not end like a sentence (nor, with a cast, name a
    speaker) is the title a person wrote above the script."""
    line = paragraph[0]
    return (len(paragraph) == 1 and not CLOSING.search(line)
            and not (cast and SPEAKER_LINE.match(line)))


def _plain(line: str) -> str:
    """A line without its inline markup: code spans, links and emphasis give their text."""
    return _unmarked(_inline(line))


def _strong(line: str, plain: str, cast: list[Character]) -> list[str]:
    """The line's texts in strong emphasis (`**so**`, `__so__`) in order, without markup; a
    speaker's name in bold (`**Mira:** Boxes!`) is not one."""
    inline = _inline(line)
    found = sorted((match for pattern in EMPHASIS for match in pattern.finditer(inline)
                    if match[1] in ("**", "__")), key=lambda match: match.start())
    speaker = SPEAKER_LINE.match(plain) if cast else None
    texts = [_unmarked(match[2]) for match in found]
    return [text for text in texts
            if text and not (speaker and text.rstrip(": ") == speaker[1].strip())]


def _inline(line: str) -> str:
    """A line with code spans, links and escapes giving their text, and the characters that
    must come through literally out of the way of emphasis."""
    line = ESCAPE.sub(lambda match: _literal(match[1]), line)
    line = CODE.sub(lambda match: _literal(match[2].strip()), line)
    line = IMAGE.sub("", line)
    line = LINK.sub(r"\1", line)
    return URL.sub(lambda match: _literal(match[1]), line)


def _unmarked(line: str) -> str:
    """`_inline`'s line without emphasis, its literal characters put back."""
    unmarked = None
    while unmarked != line:  # again for nested markers: ***both***
        unmarked, line = line, EMPHASIS[1].sub(r"\2", EMPHASIS[0].sub(r"\2", line))
    line = re.sub(r"[\ue000-\ue07f]", lambda match: chr(ord(match[0]) - PRIVATE), line)
    return _fold(line)


def _literal(text: str) -> str:
    """`text` with its ASCII punctuation out of the markup's way until `_plain` puts it back."""
    return "".join(chr(PRIVATE + ord(c)) if c.isascii() and not c.isalnum() and not c.isspace()
                   else c for c in text)


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:1000]
