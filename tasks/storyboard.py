"""The storyboard contract: what a user asks for and what the planner hands to the renderer.

Every other module reads these types. Styles are checked against config/styles.yaml.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from config.catalog import styles

MAX_SCENES = 200
MAX_TOPIC_CHARS = 500
MAX_LINE_CHARS = 1_000
MAX_SCRIPT_CHARS = 50_000
NARRATOR = "narrator"

# Ids become parts of file and object names: a conservative slug keeps them safe there.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def _reject_control_characters(value: str) -> str:
    """No subtitle or speech engine can show these; whitespace controls are allowed."""
    for char in value:
        if char not in "\n\r\t" and unicodedata.category(char) in ("Cc", "Cs", "Co"):
            raise ValueError(f"contains a control character (U+{ord(char):04X})")
    return value


def _fold_whitespace(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _fold_whitespace_keep_paragraphs(value: str) -> str:
    paragraphs = re.split(r"\n\s*\n", value.strip())
    return "\n\n".join(_fold_whitespace(p) for p in paragraphs if p.strip())


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _known_style(value: str) -> str:
    if value not in styles():
        raise ValueError(f"unknown style {value!r} (known: {', '.join(sorted(styles()))})")
    return value


Style = Annotated[str, AfterValidator(_known_style)]


def Text(max_chars: int, *, paragraphs: bool = False, blank_ok: bool = False):  # noqa: N802
    """A user-text field: length-checked, control characters refused, whitespace folded."""
    fold = _fold_whitespace_keep_paragraphs if paragraphs else _fold_whitespace
    validators = [AfterValidator(_reject_control_characters), AfterValidator(fold)]
    if not blank_ok:
        validators.append(AfterValidator(_not_blank))
    return Annotated[str, StringConstraints(max_length=max_chars), *validators]


class Aspect(str, Enum):
    portrait = "9:16"
    landscape = "16:9"
    square = "1:1"

    def size(self, short_side: int) -> tuple[int, int]:
        """Width and height for this aspect, both even as H.264 requires."""
        long_side = 2 * round(short_side * 16 / 9 / 2)
        return {
            Aspect.portrait: (short_side, long_side),
            Aspect.landscape: (long_side, short_side),
            Aspect.square: (short_side, short_side),
        }[self]


class CameraMotion(str, Enum):
    static = "static"
    zoom_in = "zoom_in"
    zoom_out = "zoom_out"
    pan_left = "pan_left"
    pan_right = "pan_right"
    pan_up = "pan_up"
    pan_down = "pan_down"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoRequest(_Strict):
    """What a person asks for: a topic or their own script, and how it should look and sound."""

    topic: Text(MAX_TOPIC_CHARS) | None = None
    script: Text(MAX_SCRIPT_CHARS, paragraphs=True) | None = None
    scenes: int = Field(6, ge=1, le=MAX_SCENES, description="Number of scenes")
    aspect: Aspect = Aspect.portrait
    style: Style = "documentary"
    voice: str = Field("en-us", pattern=r"^[A-Za-z0-9_+-]{1,64}$")
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    music: bool = True
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _topic_or_script(self) -> VideoRequest:
        if not (self.topic or self.script):
            raise ValueError("give a topic or a script")
        return self


class Character(_Strict):
    """A named speaker. The narrator needs no entry; dialogue speakers do."""

    id: str = Field(pattern=ID_PATTERN)
    name: Text(100)
    voice: str | None = Field(None, pattern=r"^[A-Za-z0-9_+-]{1,64}$")
    description: Text(MAX_LINE_CHARS, blank_ok=True) = ""


class Line(_Strict):
    speaker: str = Field(NARRATOR, pattern=ID_PATTERN)
    text: Text(MAX_LINE_CHARS)


class Scene(_Strict):
    """One shot. `id` is stable: it never changes when scenes are reordered or edited."""

    id: str = Field(pattern=ID_PATTERN)
    order: int = Field(ge=0)
    lines: list[Line] = Field(min_length=1, max_length=50)
    visual_prompt: Text(MAX_LINE_CHARS)
    camera: CameraMotion = CameraMotion.zoom_in
    duration: float = Field(gt=0, le=120, description="Target length in seconds")

    @property
    def narration(self) -> str:
        return " ".join(line.text for line in self.lines)


class Storyboard(_Strict):
    """The plan a video is rendered from. Edit it and render again: only what changed is redone."""

    title: Text(200)
    style: Style = "documentary"
    aspect: Aspect = Aspect.portrait
    voice: str = Field("en-us", pattern=r"^[A-Za-z0-9_+-]{1,64}$")
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    music: bool = True
    seed: int = Field(0, ge=0, le=2**31 - 1)
    characters: list[Character] = Field(default_factory=list, max_length=50)
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)

    @model_validator(mode="after")
    def _consistent(self) -> Storyboard:
        _reject_duplicates("scenes", "id", [s.id for s in self.scenes])
        _reject_duplicates("scenes", "order", [s.order for s in self.scenes])
        _reject_duplicates("characters", "id", [c.id for c in self.characters])
        speakers = {NARRATOR} | {c.id for c in self.characters}
        for scene in self.scenes:
            for line in scene.lines:
                if line.speaker not in speakers:
                    raise ValueError(
                        f"scene {scene.id!r} has speaker {line.speaker!r}, "
                        "which is neither 'narrator' nor a character id"
                    )
        return self

    def ordered_scenes(self) -> list[Scene]:
        return sorted(self.scenes, key=lambda scene: scene.order)

    def voice_for(self, speaker: str) -> str:
        for character in self.characters:
            if character.id == speaker and character.voice:
                return character.voice
        return self.voice

    @property
    def duration(self) -> float:
        return sum(scene.duration for scene in self.scenes)


def _reject_duplicates(field: str, attribute: str, values: list) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{field} has a duplicate {attribute} {value!r}")
        seen.add(value)
