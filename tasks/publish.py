"""Publish to a local folder: out/<slug>-<video digest 12>/ with the video, the storyboard to
edit for a rerun, the subtitles, the manifest and the video's history (tasks/history.py); and,
with `publish: gs://BUCKET/PREFIX` or `s3://BUCKET/PREFIX`, the same files to that bucket under
the same content-addressed name (tasks/bucket_publish.py).

A new folder is assembled beside its final place and renamed in whole, so a reader sees it
complete or not at all. A folder that already holds the same video is reused; only its small
files are replaced, each atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State
from slugify import slugify

from cache import open_bucket, open_store
from cache.keys import file_digest
from cache.store import ArtifactStore
from config.settings import Settings
from tasks.bucket_publish import publish_to_bucket, video_url
from tasks.history import HISTORY_FILE, History
from tasks.history import load as load_history
from tasks.manifest import LoudnessReport, Manifest, ManifestNode, RenderSummary
from tasks.nodes import NodeOutcome
from tasks.preflight import route_cost
from tasks.storyboard import Storyboard


# Scratch older than this was left by a publish that was killed; younger may be another's.
SCRATCH_MAX_AGE_S = 3600


class PublishError(RuntimeError):
    """The output folder cannot take the video; nothing of it was published."""


def folder_name(storyboard: Storyboard, video_digest: str) -> str:
    """Only [a-z0-9-]: the title is user text and must never steer the path."""
    return f"{slugify(storyboard.title, max_length=48) or 'video'}-{video_digest[:12]}"


def publish(storyboard: Storyboard, outcomes: list[NodeOutcome], composed: NodeOutcome,
            settings: Settings, warnings: list[str] | None = None,
            history: History | None = None) -> RenderSummary:
    """`history`: the video's, its current version `storyboard` (None: a video of its own, or
    the one already published in the same folder)."""
    started = time.monotonic()
    store = open_store(settings.store)
    out = settings.out.expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PublishError(f"publish: cannot write to {out}: {error.strerror}") from error
    _sweep(out, (".incoming-*", ".stale-*"))
    video = composed.output("video")
    folder = out / folder_name(storyboard, video.digest)
    published = folder / "video.mp4"
    reused = published.is_file() and file_digest(published) == video.digest
    if history is None:  # the video's own, or the folder's when it holds this video already
        history = (load_history(folder / "storyboard.json")
                   if reused and (folder / HISTORY_FILE).is_file() else History.begun(storyboard))
        if history.current.storyboard != storyboard:  # a storyboard rendered by itself again
            history = history.then(storyboard, "rendered from its storyboard")
    history = history.published(folder.name)
    bucket = _Bucket(settings, folder.name) if settings.publish else None
    nodes = [ManifestNode.of(outcome) for outcome in [*outcomes, composed]]
    nodes.append(ManifestNode(
        id="publish", kind="publish", scene=None, status="cached" if reused else "generated",
        key=None, provider=bucket.bucket.target.scheme if bucket else "folder", model="local",
        params={"folder": folder.name, "bucket": bucket.folder if bucket else None},
        outputs={"video": video.digest}, cost_usd=0.0, saved_usd=0.0,
        seconds=round(time.monotonic() - started, 3),
    ))
    loudness = LoudnessReport.model_validate_json(store.read_bytes(composed.output("loudness")))
    manifest = Manifest.of(storyboard.title, video.digest, nodes,
                           url=bucket.url if bucket else None, warnings=warnings,
                           loudness=loudness, video=history.video,
                           version=history.current.version,
                           routing=route_cost(storyboard, settings))
    small_files = {
        "storyboard.json": storyboard.model_dump_json(indent=2).encode(),
        "manifest.json": manifest.model_dump_json(indent=2).encode(),
        HISTORY_FILE: history.model_dump_json(indent=2).encode(),
    }
    if reused:
        _sweep(folder, [f".{name}-*" for name in small_files])
        for name, data in small_files.items():
            _replace_file(folder / name, data)
    else:
        _publish_new_folder(folder, store, composed, small_files)
    if bucket:
        bucket.upload(folder)
    store.keep_manifest(folder.name, manifest.model_dump(mode="json"))
    return RenderSummary.of(folder, manifest)


class _Bucket:
    """The bucket copy of a published folder; its URL is known (and signed) before the upload,
    so the manifest that is uploaded records it."""

    def __init__(self, settings: Settings, name: str):
        self.bucket = open_bucket(settings.publish)
        self.name = name
        self.folder = self.bucket.uri(self.bucket.target.object_name(name, "")) + "/"
        self.url = video_url(self.bucket, name, settings.url_expiry_s)

    def upload(self, folder: Path) -> None:
        publish_to_bucket(self.bucket, self.name,
                          {path.name: path for path in sorted(folder.iterdir())})


def _publish_new_folder(folder: Path, store: ArtifactStore, composed: NodeOutcome,
                        small_files: dict[str, bytes]) -> None:
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".incoming-"))
    try:
        shutil.copyfile(store.blob_path(composed.output("video").digest), staging / "video.mp4")
        shutil.copyfile(store.blob_path(composed.output("subtitles").digest),
                        staging / "subtitles.ass")
        for name, data in small_files.items():
            (staging / name).write_bytes(data)
        staging.chmod(0o755)
        if folder.exists():  # a damaged earlier copy: swap it out, then drop it
            stale = folder.parent / f".stale-{folder.name}-{os.getpid()}"
            os.rename(folder, stale)
            os.rename(staging, folder)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sweep(folder: Path, patterns) -> None:
    """Remove the scratch (named by `patterns`) that a killed publish left in `folder`."""
    cutoff = time.time() - SCRATCH_MAX_AGE_S
    for path in (path for pattern in patterns for path in folder.glob(pattern)):
        try:
            if path.lstat().st_mtime >= cutoff:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:  # another publish swept it first
            continue


def _replace_file(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


@task(name="publish", task_run_name="publish-folder", cache_policy=NO_CACHE)
def publish_video(storyboard: Storyboard, outcomes: list[NodeOutcome], composed: NodeOutcome,
                  settings: Settings, warnings: list[str],
                  history: History | None = None) -> RenderSummary | State:
    """Publish the video, its storyboard, subtitles, manifest and history to the output folder."""
    summary = publish(storyboard, outcomes, composed, settings, warnings, history)
    if next(node for node in summary.nodes if node.kind == "publish").status == "cached":
        return Completed(name="Cached", message="already published", data=summary)
    return summary
