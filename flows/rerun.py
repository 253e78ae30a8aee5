"""Shape a published video: scene operations (flows/editing.py) or a return to an earlier
version make its next version, rendered so that only the nodes they touched are generated."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prefect import flow

from cache import open_store
from config.settings import Settings
from flows.editing import EditRefused, NotFound, Operation, Revert, apply
from flows.options import RenderOptions
from flows.video import render, run_settings
from tasks import budget
from tasks import history as histories
from tasks.ffmpeg import MediaError, probe
from tasks.history import History
from tasks.manifest import RenderSummary
from tasks.preflight import RenderPreview

PUBLISHED_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


@flow(name="rerun-with-edits", flow_run_name="rerun-{video}")
def rerun_with_edits(
    video: str,
    operations: list[Operation] = [],
    revert: Revert | None = None,
    dry_run: bool = False,
    options: RenderOptions = RenderOptions(),
) -> RenderSummary | RenderPreview:
    """Make the next version of a published video and render it; the rest is reused.

    Args:
        video: The published video: its folder name under the output folder (e.g.
            how-bees-make-honey-3f2a9c1b7d4e), or the path of its folder or storyboard.json.
        operations: Scene operations, in order: edit, add, delete, move, trim, retake, or use
            an earlier take.
        revert: Instead of operations: make an earlier version current again.
        dry_run: Only say what would be generated and reused, and what it would cost.
        options: Profile, the output folder the video was published to, size, bucket and
            cost limit (empty: the server's).
    """
    settings = run_settings(options)
    source = published_storyboard(video, settings.out)
    history = next_version(source, operations, revert, settings)
    if dry_run:
        return RenderPreview.of(history.current.storyboard, settings)
    with budget.run_ledger(settings.max_cost):
        return render(history.current.storyboard, settings, [], history)


def next_version(source: Path, operations: list[Operation], revert: Revert | None,
                 settings: Settings) -> History:
    """The history of the video at `source` with its next version: `operations` applied to
    its current one, or the version `revert` names. Raises EditRefused."""
    history = histories.load(source)
    # Other folders of this video may have gone on from an earlier version: number past them,
    # and count their takes as made.
    published = open_store(settings.store).versions_of(history.video)
    number = max([history.current.version, *(m.get("version") or 0 for m in published)]) + 1
    if revert is not None:
        if operations:
            raise EditRefused("revert: give operations or a version to revert to, not both")
        earlier = history.version(revert.version)
        if earlier is None:
            raise NotFound(f"revert version: no version {revert.version} (versions: "
                           f"{', '.join(str(v.version) for v in history.versions)})")
        return history.then(earlier.storyboard, f"revert to version {revert.version}", number)
    if not operations:
        raise EditRefused("operations: give at least one, or a version to revert to")

    def takes_made(scene: str, media: str) -> set[int]:
        return set(history.takes(scene, media)) | set(histories.published_takes(published,
                                                                               scene, media))

    edited = apply(history.current.storyboard, operations, known_ids=history.scene_ids(),
                   takes_made=takes_made, clip_seconds=_clip_lengths(source.parent, settings))
    return history.then(edited, "; ".join(op.describe() for op in operations), number)


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


def _clip_lengths(folder: Path, settings: Settings):
    """How long each scene's clip, as the folder's manifest lists it, lasts (None: unknown)."""
    try:
        nodes = json.loads((folder / "manifest.json").read_text())["nodes"]
    except (OSError, ValueError, KeyError):
        nodes = []
    clips = {node["scene"]: node["outputs"].get("clip") for node in nodes
             if node.get("kind") == "clip"}

    def seconds(scene_id: str) -> float | None:
        digest = clips.get(scene_id)
        if digest is None:
            return None
        try:
            return probe(open_store(settings.store).blob_path(digest)).duration
        except (MediaError, OSError):
            return None

    return seconds
