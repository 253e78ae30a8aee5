"""A user's script read as a person wrote it: one scene per paragraph. With a cast, a line of the
form `Name: text` is that character's (by id or name, any case), and the lines after it until
the next speaker continue it; other lines are the narrator's."""

from __future__ import annotations

import re

from tasks.storyboard import NARRATOR, Character, Line

SPEAKER_LINE = re.compile(r"^([^:]{1,40}?)\s*:\s+(\S.*)$")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


class ScriptError(ValueError):
    """A script line names someone who is not in the cast."""


def script_scenes(script: str, cast: list[Character]) -> list[list[Line]]:
    """The script's paragraphs, each as its lines. Without a cast every paragraph is narration."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", script) if p.strip()]
    if not cast:
        return [[Line(text=_fold(p))] for p in paragraphs]
    speakers = {key.casefold(): c.id for c in cast for key in (c.id, c.name)}
    scenes = []
    for paragraph in paragraphs:
        lines: list[tuple[str, str]] = []
        for text in paragraph.splitlines():
            match = SPEAKER_LINE.match(text.strip())
            if match:
                name = match[1].strip()
                if name.casefold() not in speakers:
                    shown = text.strip() if len(text.strip()) <= 60 else text.strip()[:57] + "..."
                    raise ScriptError(f"script: the line {shown!r} names {name!r}, who is not in "
                                      f"the cast ({', '.join(c.id for c in cast)})")
                lines.append((speakers[name.casefold()], match[2]))
            elif lines:
                lines[-1] = (lines[-1][0], f"{lines[-1][1]} {text}")
            else:
                lines.append((NARRATOR, text))
        scenes.append([Line(speaker=speaker, text=_fold(text)) for speaker, text in lines])
    return scenes


def sentences(text: str) -> list[str]:
    """The sentences of `text`, split after . ! ? or …"""
    return [sentence for sentence in SENTENCE_END.split(text.strip()) if sentence]


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:1000]
