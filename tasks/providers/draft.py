"""The storyboard draft a language model writes: its shape, the schema it is asked for, and how a
draft that still breaks that schema after its repair is made to fit.

The draft models state every limit the storyboard has; `reply_schema` adds the scene count of
the request. `fit_draft` reads the same schema, so a limit is stated once.
"""

from __future__ import annotations

import json
from itertools import groupby

from pydantic import BaseModel, Field

from tasks.script import sentences
from tasks.storyboard import (
    MAX_LINE_CHARS,
    MAX_LINES,
    MAX_ON_SCREEN_CHARS,
    MAX_SCENE_SECONDS,
    MAX_SCENES,
    MAX_TITLE_CHARS,
    CameraMotion,
    ShotSize,
    VideoRequest,
)

# The shortest scene a draft may ask for: one spoken word needs about that long.
MIN_SCENE_SECONDS = 1.0


class DraftLine(BaseModel):
    speaker: str = Field(description="The id of the cast member who says it")
    text: str = Field(max_length=MAX_LINE_CHARS,
                      description="What they say, in character: one or two sentences")


class DraftScene(BaseModel):
    narration: str = Field("", max_length=MAX_LINE_CHARS,
                           description="What the narrator says in this scene, 1-3 sentences "
                           "(empty when the scene is dialogue)")
    # One line fewer than a scene holds: the narration, when there is one, is a line too.
    lines: list[DraftLine] = Field(default_factory=list, max_length=MAX_LINES - 1,
                                   description="With a cast: the scene's dialogue, speakers "
                                   "alternating; empty otherwise")
    location: str | None = Field(None, description="The id of the location it happens in, "
                                 "or null")
    visual_prompt: str = Field(max_length=MAX_LINE_CHARS,
                               description="A vivid description of the scene's picture")
    on_screen_text: str = Field("", max_length=MAX_ON_SCREEN_CHARS,
                                description="The scene's key idea in at most 6 words, shown "
                                "large on screen: not a sentence of the narration")
    camera: CameraMotion = Field(description="How the camera moves over the picture")
    # ge, not gt: Gemini's schema has no exclusiveMinimum.
    duration: float = Field(ge=MIN_SCENE_SECONDS, le=MAX_SCENE_SECONDS,
                            description="Seconds on screen, long enough to speak the narration")
    shot: ShotSize = Field(ShotSize.MS, description="Shot size: ECU, CU, MCU, MS, LS or ELS "
                           "(establishing)")
    intensity: float = Field(0.5, ge=0, le=1, description="How strong the scene's emotion or "
                             "action is, 0 calm to 1 peak")
    physics: bool = Field(False, description="Whether it shows action whose physics must look "
                          "right (liquids, falls, collisions)")


class DraftStoryboard(BaseModel):
    """The reply the model writes (no ids, no orders: those are ours to assign)."""

    title: str = Field(max_length=MAX_TITLE_CHARS)
    scenes: list[DraftScene] = Field(min_length=1, max_length=MAX_SCENES)


def reply_schema(request: VideoRequest) -> dict:
    """The JSON schema a reply to `request` must match: the draft's limits and exactly
    `request.drafted_scenes` scenes. Gemini's `response_schema` and OpenAI's `json_schema` both send it."""
    schema = DraftStoryboard.model_json_schema()
    schema["properties"]["scenes"].update(minItems=request.drafted_scenes,
                                            maxItems=request.drafted_scenes)
    return schema


def fit_draft(reply: str, request: VideoRequest) -> tuple[DraftStoryboard, list[str]]:
    """`reply` made to fit the request, and one line per change. Raises ValueError (or
    ValidationError) for a reply that is not a draft at all: not JSON, a field missing.

    Every text, list and number beyond a limit of `reply_schema` is cut or clamped to it (a
    text at its last sentence end within the limit, else its last word); then the scenes are
    cut or split to the count asked (`fit_scene_count`).
    """
    schema = DraftStoryboard.model_json_schema()
    adjustments: list[str] = []
    data = _clamped(json.loads(reply), schema, schema.get("$defs", {}), (), adjustments)
    draft = DraftStoryboard.model_validate(data)
    scenes, counted = fit_scene_count(draft.scenes, request.drafted_scenes)
    return draft.model_copy(update={"scenes": scenes}), adjustments + counted


def fit_scene_count(scenes: list[DraftScene], count: int) -> tuple[list[DraftScene], list[str]]:
    """Exactly `count` scenes, the same for the same draft every time, and what was changed.

    Too many: the first `count - 1` scenes and the last are kept, so the hook and the takeaway
    survive. Too few: the scene with the most sentences (then words; the earliest of equals) is
    split in two at its middle sentence boundary, again until there are `count`; a scene of one
    sentence is split between its middle words, and one of a single word is repeated. Both halves
    keep the picture, camera and location; the duration is shared in proportion to the words.
    """
    wrote = len(scenes)
    told = f"scenes: the model wrote {wrote} of the {count} scenes asked"
    if wrote > count:
        if count == 1:
            return scenes[:1], [f"{told}; kept scene 1"]
        first = "1" if count == 2 else f"1-{count - 1}"
        return [*scenes[:count - 1], scenes[-1]], [f"{told}; kept scenes {first} and {wrote}"]
    scenes = list(scenes)
    while len(scenes) < count:
        index = max(range(len(scenes)), key=lambda i: _size(scenes[i]))
        scenes[index:index + 1] = _halves(scenes[index])
    if wrote == count:
        return scenes, []
    return scenes, [f"{told}; split the longest in two until there were {count}"]


def _clamped(value, schema: dict, defs: dict, where: tuple, adjustments: list[str]):
    """`value` within the limits `schema` states (maxLength, maxItems, minimum, maximum),
    walked through objects and arrays; each change is described in `adjustments`."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    limit = schema.get("maxLength")
    if isinstance(value, str) and limit is not None and len(value) > limit:
        adjustments.append(f"{_place(where)}: cut to {limit} characters")
        return _cut(value, limit)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = schema.get("minimum", value), schema.get("maximum", value)
        if not low <= value <= high:
            clamped = min(max(value, low), high)
            adjustments.append(f"{_place(where)}: {value:g} clamped to {clamped:g}")
            return clamped
    if isinstance(value, list) and "items" in schema:
        limit = schema.get("maxItems")
        if limit is not None and len(value) > limit:
            adjustments.append(f"{_place(where)}: {len(value)} cut to the first {limit}")
            value = value[:limit]
        return [_clamped(item, schema["items"], defs, (*where, number), adjustments)
                for number, item in enumerate(value, 1)]
    if isinstance(value, dict) and "properties" in schema:
        return {name: _clamped(item, schema["properties"][name], defs, (*where, name), adjustments)
                if name in schema["properties"] else item for name, item in value.items()}
    return value


def _place(where: tuple) -> str:
    """("scenes", 2, "lines", 1, "text") → "scene 2 line 1 text"."""
    words = []
    for part in where:
        if isinstance(part, int):
            words[-1] = f"{words[-1].removesuffix('s')} {part}"
        else:
            words.append(part)
    return " ".join(words)


def _cut(text: str, limit: int) -> str:
    """`text` within `limit` characters: up to its last whole sentence there, else its last
    whole word, else cut hard."""
    kept = ""
    for sentence in sentences(text):
        longer = f"{kept} {sentence}".strip()
        if len(longer) > limit:
            break
        kept = longer
    if kept:
        return kept
    head = text[:limit + 1]
    return head.rsplit(None, 1)[0] if len(head.split()) > 1 else text[:limit]


def _pieces(scene: DraftScene) -> list[tuple[int | None, str]]:
    """What a scene says, sentence by sentence: (None, sentence) for its narration, then
    (line number, sentence) for each of its lines."""
    return ([(None, sentence) for sentence in sentences(scene.narration)]
            + [(number, sentence) for number, line in enumerate(scene.lines)
               for sentence in sentences(line.text)])


def _size(scene: DraftScene) -> tuple[int, int]:
    return len(_pieces(scene)), sum(len(text.split()) for _, text in _pieces(scene))


def _halves(scene: DraftScene) -> list[DraftScene]:
    pieces = _pieces(scene)
    if len(pieces) == 1:  # one sentence: split it between its words
        where, text = pieces[0]
        words = text.split()
        middle = (len(words) + 1) // 2
        pieces = [(where, " ".join(words[:middle])), (where, " ".join(words[middle:]))]
    if len(pieces) < 2 or not all(text for _, text in pieces):
        return [scene, scene]  # a single word: said twice
    middle = (len(pieces) + 1) // 2
    words = sum(len(text.split()) for _, text in pieces)
    return [_scene_saying(scene, half, words) for half in (pieces[:middle], pieces[middle:])]


def _scene_saying(scene: DraftScene, pieces: list[tuple[int | None, str]],
                  all_words: int) -> DraftScene:
    """`scene` with only `pieces` said, and its share of the duration."""
    narration = " ".join(text for where, text in pieces if where is None)
    spoken = [(where, text) for where, text in pieces if where is not None]
    lines = [scene.lines[where].model_copy(update={"text": " ".join(text for _, text in group)})
             for where, group in groupby(spoken, key=lambda piece: piece[0])]
    share = sum(len(text.split()) for _, text in pieces) / all_words
    duration = round(max(MIN_SCENE_SECONDS, scene.duration * share), 1)
    return scene.model_copy(update={"narration": narration, "lines": lines,
                                    "duration": duration})
