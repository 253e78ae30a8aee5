"""Rerun a published video with some scenes edited: only the edited scenes' nodes regenerate."""

from __future__ import annotations

import re
from pathlib import Path

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from flows.options import RenderOptions
from flows.video import render, run_settings
from tasks import budget
from tasks.manifest import RenderSummary
from tasks.storyboard import Line, Storyboard

PUBLISHED_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


class SceneEdit(BaseModel):
    """One scene's new narration, picture and/or on-screen text."""

    model_config = ConfigDict(extra="forbid")
    scene: str = Field(title="Scene", description="Its id in the storyboard, e.g. s003")
    narration: str | None = Field(None, title="New narration", description="Leave empty to keep it")
    visual_prompt: str | None = Field(None, title="New picture",
                                      description="A new visual prompt; leave empty to keep it")
    on_screen_text: str | None = Field(None, title="New on-screen text", description=(
        "A few words set large on the picture; leave empty to keep them, a space for none"))


@flow(name="rerun-with-edits", flow_run_name="rerun-{video}")
def rerun_with_edits(
    video: str,
    edits: list[SceneEdit],
    options: RenderOptions = RenderOptions(),
) -> RenderSummary:
    """Render a published video again with some scenes edited; the rest is reused.

    Args:
        video: The published video: its folder name under the output folder (e.g.
            how-bees-make-honey-3f2a9c1b7d4e), or the path of its folder or storyboard.json.
        edits: The scenes to change: each names a scene and its new narration, picture and/or
            on-screen text.
        options: Profile, the output folder the video was published to, size, bucket and
            cost limit (empty: the server's).
    """
    settings = run_settings(options)
    source = published_storyboard(video, settings.out)
    with budget.run_ledger(settings.max_cost):
        return render(apply_edits(Storyboard.model_validate_json(source.read_text()), edits),
                      settings, [])


def published_storyboard(video: str, out: Path) -> Path:
    """The storyboard.json of a published video, by folder name or path."""
    if PUBLISHED_NAME.match(video):  # a bare name can only mean a folder under `out`
        path = out.expanduser() / video / "storyboard.json"
    else:
        path = Path(video).expanduser()
        path = path / "storyboard.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"video: no published storyboard at {path}")
    return path


def apply_edits(storyboard: Storyboard, edits: list[SceneEdit]) -> Storyboard:
    scenes = {scene.id: scene for scene in storyboard.scenes}
    for edit in edits:
        if edit.scene not in scenes:
            raise ValueError(f"edits: no scene {edit.scene!r} (scenes: {', '.join(scenes)})")
        changes = {}
        if edit.narration is not None:  # spoken by whoever opened the scene
            changes["lines"] = [Line(speaker=scenes[edit.scene].lines[0].speaker,
                                     text=edit.narration)]
        if edit.visual_prompt is not None:
            changes["visual_prompt"] = edit.visual_prompt
        if edit.on_screen_text is not None:
            changes["on_screen_text"] = edit.on_screen_text
        scenes[edit.scene] = scenes[edit.scene].model_copy(update=changes)
    # Validated again: edited text obeys the same rules as any storyboard's.
    return Storyboard.model_validate(
        {**storyboard.model_dump(), "scenes": [s.model_dump() for s in scenes.values()]})
