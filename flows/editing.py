"""Scene operations: add, delete, move, edit, trim, retake and use a take, each a small typed
value that the CLI, the rerun-with-edits deployment and the HTTP API build alike, and that
`apply` turns into the next version of a storyboard.

An operation that cannot apply raises EditRefused naming the operation and its field; the
storyboard it was given is never changed (storyboards are immutable values).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.providers.local_planner import target_seconds
from tasks.storyboard import (
    ID_PATTERN,
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_ON_SCREEN_CHARS,
    MAX_SCENE_SECONDS,
    MAX_TAKES,
    MIN_TRIM_SECONDS,
    NARRATOR,
    CameraMotion,
    Line,
    Scene,
    ShotSize,
    Storyboard,
    Takes,
    Text,
    Trim,
)

SceneId = Annotated[str, Field(pattern=ID_PATTERN, title="Scene", description="Its id, e.g. s003")]
Media = Literal["image", "clip", "speech"]


class EditRefused(ValueError):
    """An operation that cannot apply: its message names the operation and the field."""


class NotFound(EditRefused):
    """An operation names a scene, or a version, that the video does not have."""


class _Operation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:
        """What the operation did, in a few words, for the history."""
        raise NotImplementedError

    def refused(self, field: str, problem: str, error: type[EditRefused] = EditRefused
                ) -> EditRefused:
        return error(f"{self.op} {field}: {problem}")


class EditScene(_Operation):
    """A scene's new narration, picture, camera, on-screen text and/or how it is shot (which
    routes its clip: config/router.yaml); empty fields are kept."""

    model_config = ConfigDict(title="Edit a scene")
    op: Literal["edit"] = "edit"
    scene: SceneId
    narration: Text(MAX_LINE_CHARS) | None = Field(None, title="New narration")
    lines: list[Line] | None = Field(None, max_length=MAX_LINES, title="New lines",
                                     description="Instead of narration: who says what, in order "
                                                 "(a dialogue's lines)")
    visual_prompt: Text(MAX_LINE_CHARS) | None = Field(None, title="New picture")
    camera: CameraMotion | None = Field(None, title="New camera motion")
    on_screen_text: Text(MAX_ON_SCREEN_CHARS, blank_ok=True) | None = Field(
        None, title="New on-screen text", description="A space for none")
    shot: ShotSize | None = Field(None, title="New shot size")
    intensity: float | None = Field(None, ge=0, le=1, title="New intensity (0-1)")
    physics: bool | None = Field(None, title="Physics-heavy action")

    # The scene's fields an edit sets as given (narration replaces its lines).
    SET: ClassVar[tuple[str, ...]] = ("visual_prompt", "camera", "on_screen_text", "shot",
                                      "intensity", "physics")

    def describe(self) -> str:
        changed = [name for name in ("narration", "lines", *self.SET)
                   if getattr(self, name) is not None]
        return f"edit {self.scene} " + ", ".join(changed)


class AddScene(_Operation):
    """A new scene after another (or first), with a new id of its own."""

    model_config = ConfigDict(title="Add a scene")
    op: Literal["add"] = "add"
    after: SceneId | None = Field(None, title="After", description="Empty: first")
    narration: Text(MAX_LINE_CHARS)
    visual_prompt: Text(MAX_LINE_CHARS) | None = Field(
        None, title="Picture", description="Empty: drawn from the narration")
    camera: CameraMotion = CameraMotion.zoom_in

    def describe(self) -> str:
        return f"add a scene after {self.after}" if self.after else "add a first scene"


class DeleteScene(_Operation):
    model_config = ConfigDict(title="Delete a scene")
    op: Literal["delete"] = "delete"
    scene: SceneId

    def describe(self) -> str:
        return f"delete {self.scene}"


class MoveScene(_Operation):
    """A scene moved after another, or first (no `after`)."""

    model_config = ConfigDict(title="Move a scene")
    op: Literal["move"] = "move"
    scene: SceneId
    after: SceneId | None = Field(None, title="After", description="Empty: first")

    def describe(self) -> str:
        return f"move {self.scene} " + (f"after {self.after}" if self.after else "first")


class TrimScene(_Operation):
    """The part of a scene's clip (as it was generated) to show; the clip itself is kept."""

    model_config = ConfigDict(title="Trim a scene's clip")
    op: Literal["trim"] = "trim"
    scene: SceneId
    start: float = Field(ge=0, description="Seconds into the clip")
    end: float = Field(gt=0, description="Seconds into the clip")

    def describe(self) -> str:
        return f"trim {self.scene} to {self.start:g}-{self.end:g} s"


class RetakeScene(_Operation):
    """A new take of a scene's keyframe (and so its clip), its clip alone, or its speech."""

    model_config = ConfigDict(title="Retake")
    op: Literal["retake"] = "retake"
    scene: SceneId
    media: list[Media] = Field(["image"], min_length=1, description="image, clip and/or speech")

    def describe(self) -> str:
        return f"retake {self.scene} " + ", ".join(self.media)


class UseTake(_Operation):
    """Go back to a take made before: nothing is generated."""

    model_config = ConfigDict(title="Use an earlier take")
    op: Literal["use"] = "use"
    scene: SceneId
    media: Media = "image"
    take: int = Field(ge=1, le=MAX_TAKES)

    def describe(self) -> str:
        return f"use {self.scene} {self.media} take {self.take}"


class Revert(BaseModel):
    """Make an earlier version current again: rendered from the store, at no provider cost
    while its nodes are kept."""

    model_config = ConfigDict(extra="forbid", title="Revert to a version")
    version: int = Field(ge=1, title="Version", description="From `reelflow history`")


Operation = Annotated[Union[EditScene, AddScene, DeleteScene, MoveScene, TrimScene, RetakeScene,
                            UseTake], Field(discriminator="op")]


def apply(storyboard: Storyboard, operations: Sequence[Operation], *,
          known_ids: set[str] = frozenset(), takes_made: Callable[[str, str], set[int]] | None = None,
          clip_seconds: Callable[[str], float | None] | None = None) -> Storyboard:
    """`storyboard` with `operations` applied in order.

    known_ids: every scene id any version of this video used (a new scene never takes one);
    takes_made(scene, media): the takes of it that were made; clip_seconds(scene): how long
    its clip is as generated (None: not known, checked against what was asked for).
    """
    _refuse_conflicts(operations)
    scenes = storyboard.ordered_scenes()
    used = set(known_ids) | {scene.id for scene in scenes}
    for operation in operations:
        scenes = _apply_one(operation, scenes, used, takes_made, clip_seconds)
        used |= {scene.id for scene in scenes}
    renumbered = [scene.model_copy(update={"order": order}) for order, scene in enumerate(scenes)]
    try:  # validated again: edited text obeys the rules of any storyboard's
        return Storyboard.model_validate({**storyboard.model_dump(),
                                          "scenes": [s.model_dump() for s in renumbered]})
    except ValidationError as error:
        raise EditRefused(f"storyboard: {error.errors()[0]['msg']}") from None


def _apply_one(operation: Operation, scenes: list[Scene], used: set[str], takes_made,
               clip_seconds) -> list[Scene]:
    ids = [scene.id for scene in scenes]

    def position(scene_id: str, field: str = "scene") -> int:
        if scene_id not in ids:
            raise operation.refused(field, f"no scene {scene_id!r} (scenes: {', '.join(ids)})",
                                    NotFound)
        return ids.index(scene_id)

    if isinstance(operation, AddScene):
        at = position(operation.after, "after") + 1 if operation.after else 0
        lines = [Line(text=operation.narration)]
        added = Scene(id=_new_id(used), order=0, lines=lines,
                      visual_prompt=operation.visual_prompt or operation.narration,
                      camera=operation.camera,
                      duration=min(target_seconds(lines), MAX_SCENE_SECONDS))
        return [*scenes[:at], added, *scenes[at:]]
    index = position(operation.scene)
    scene = scenes[index]
    if isinstance(operation, DeleteScene):
        if len(scenes) == 1:
            raise operation.refused("scene", "it is the only scene left; a video needs one")
        return scenes[:index] + scenes[index + 1:]
    if isinstance(operation, MoveScene):
        if operation.after == operation.scene:
            raise operation.refused("after", "a scene cannot move after itself")
        if operation.after:
            position(operation.after, "after")
        rest = scenes[:index] + scenes[index + 1:]
        at = [s.id for s in rest].index(operation.after) + 1 if operation.after else 0
        return [*rest[:at], scene, *rest[at:]]
    scenes = list(scenes)
    scenes[index] = _changed(operation, scene, takes_made, clip_seconds)
    return scenes


def _changed(operation: Operation, scene: Scene, takes_made, clip_seconds) -> Scene:
    if isinstance(operation, EditScene):
        update = {}
        if operation.narration is not None and operation.lines is not None:
            raise operation.refused("lines", "give narration or lines, not both")
        if operation.narration is not None:  # spoken by whoever opened the scene, if anyone
            speaker = scene.lines[0].speaker if scene.lines else NARRATOR
            update["lines"] = [Line(speaker=speaker, text=operation.narration)]
        if operation.lines is not None:
            update["lines"] = operation.lines
        for name in operation.SET:
            if getattr(operation, name) is not None:
                update[name] = getattr(operation, name)
        if not update:
            raise operation.refused("scene", "give a narration, lines, visual prompt, camera, "
                                    "on-screen text, shot, intensity or physics to change")
        return scene.model_copy(update=update)
    if isinstance(operation, TrimScene):
        if operation.end - operation.start < MIN_TRIM_SECONDS:
            raise operation.refused("end", f"a trim lasts at least {MIN_TRIM_SECONDS} s "
                                    f"({operation.start:g}-{operation.end:g} s is shorter)")
        length = clip_seconds(scene.id) if clip_seconds else None
        length = scene.duration if length is None else length
        if operation.end > length + 1e-6:
            raise operation.refused("end", f"the clip of {scene.id} lasts {length:g} s; "
                                    f"{operation.end:g} s is past its end")
        return scene.model_copy(update={"trim": Trim(start=operation.start, end=operation.end)})
    if isinstance(operation, RetakeScene):
        takes = scene.takes.model_dump()
        for media in dict.fromkeys(operation.media):
            made = takes_made(scene.id, media) if takes_made else {takes[media]}
            takes[media] = max(made | {takes[media]}) + 1
            if takes[media] > MAX_TAKES:
                raise operation.refused("media", f"{scene.id} has {MAX_TAKES} {media} takes")
        return scene.model_copy(update={"takes": Takes(**takes), **_untrimmed(operation.media)})
    made = takes_made(scene.id, operation.media) if takes_made else {getattr(scene.takes,
                                                                             operation.media)}
    if operation.take not in made:
        raise operation.refused("take", f"{scene.id} has no {operation.media} take "
                                f"{operation.take} (made: {', '.join(map(str, sorted(made)))})")
    return scene.model_copy(update={"takes": scene.takes.model_copy(
        update={operation.media: operation.take}), **_untrimmed([operation.media])})


def _untrimmed(media: list[str]) -> dict:
    """Another clip (a new picture makes one too) is shown whole: a trim was of the old one."""
    return {"trim": None} if {"image", "clip"} & set(media) else {}


def _refuse_conflicts(operations: Sequence[Operation]) -> None:
    """Two operations of one request on one scene where the second undoes or contradicts the
    first (a delete with anything else, two trims, two moves): refused, not guessed at."""
    seen: dict[tuple[str, str], Operation] = {}
    deleted = set()
    for operation in operations:
        scene = getattr(operation, "scene", None)
        if scene is None:
            continue
        if scene in deleted:
            raise operation.refused("scene", f"{scene} is deleted earlier in this request")
        if isinstance(operation, DeleteScene):
            if any(key[0] == scene for key in seen):
                raise operation.refused("scene", f"{scene} is changed earlier in this request")
            deleted.add(scene)
        kind = operation.op
        if kind in ("trim", "move", "use") and (scene, kind) in seen:
            raise operation.refused("scene", f"{scene} has two {kind} operations in this request")
        seen[(scene, kind)] = operation


def _new_id(used: set[str]) -> str:
    """The next s<number> id above every one this video ever used."""
    numbers = [int(match[1]) for scene_id in used if (match := re.fullmatch(r"s(\d+)", scene_id))]
    return f"s{max(numbers, default=0) + 1:03d}"
