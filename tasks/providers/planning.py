"""What every language-model planner shares: the prompt, the reply's shape, and one repair.

The model writes a `DraftStoryboard` (no ids, no orders: those are ours to assign, so they are
stable and safe); a reply that does not validate is sent back once with the error.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field, ValidationError

from tasks.providers.base import ProviderError
from tasks.storyboard import CameraMotion, Line, Scene, Storyboard, VideoRequest


class DraftScene(BaseModel):
    narration: str = Field(description="What the narrator says in this scene, 1-3 sentences")
    visual_prompt: str = Field(description="A vivid description of the scene's picture")
    camera: CameraMotion = Field(description="How the camera moves over the picture")
    duration: float = Field(description="Seconds on screen, long enough to speak the narration")


class DraftStoryboard(BaseModel):
    """The reply schema sent to the model (as `response_schema` or JSON schema)."""

    title: str
    scenes: list[DraftScene]


def planner_prompt(request: VideoRequest) -> str:
    source = (f"Turn this script into scenes, keeping its words:\n{request.script}"
              if request.script else f"Topic: {request.topic}")
    return (
        f"Write a storyboard for a short {request.aspect.value} video of exactly "
        f"{request.scenes} scenes in the visual style '{request.style}', narrated in language "
        f"'{request.language}'. Open with a hook, make one point per scene, close with a "
        f"takeaway. Reply with JSON only.\n\n{source}"
    )


def repair_prompt(prompt: str, reply: str, error: str) -> str:
    return (f"{prompt}\n\nYour previous reply was:\n{reply}\n\nIt was rejected: {error}\n"
            "Reply again with corrected JSON only.")


def to_storyboard(draft: DraftStoryboard, request: VideoRequest) -> Storyboard:
    """Our storyboard from the model's draft: ids and order assigned here."""
    return Storyboard(
        title=draft.title, style=request.style, aspect=request.aspect, voice=request.voice,
        language=request.language, music=request.music, seed=request.seed,
        scenes=[Scene(id=f"s{i + 1:03d}", order=i, lines=[Line(text=scene.narration)],
                      visual_prompt=scene.visual_prompt, camera=scene.camera,
                      duration=scene.duration)
                for i, scene in enumerate(draft.scenes)],
    )


def plan_with_one_repair(ask: Callable[[str], str], request: VideoRequest,
                         provider: str) -> Storyboard:
    """`ask(prompt) -> reply text`; a reply that does not validate is retried once."""
    prompt = planner_prompt(request)
    reply = ask(prompt)
    for attempt in (1, 2):
        try:
            board = to_storyboard(DraftStoryboard.model_validate_json(reply), request)
            if len(board.scenes) != request.scenes:
                raise ValueError(f"expected {request.scenes} scenes, got {len(board.scenes)}")
            return board
        except (ValidationError, ValueError) as error:
            summary = _one_line(error)
            if attempt == 2:
                raise ProviderError(f"{provider}: the storyboard reply did not validate twice: "
                                    f"{summary}") from None
            reply = ask(repair_prompt(prompt, reply, summary))
    raise AssertionError("unreachable")


def _one_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(error)
