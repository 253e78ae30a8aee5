"""A video's history: every version of its storyboard, when it was made, what changed and
where it was published. It lives beside the storyboard (history.json in the published folder)
and travels with each new version's folder, so any version can be made current again.

Each published manifest names its video and version; `cache gc` keeps what the versions in
a history need (bounded by `--history-days`).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path

from pydantic import BaseModel, Field

from tasks.storyboard import Storyboard

HISTORY_FILE = "history.json"


class Version(BaseModel):
    version: int = Field(ge=1)
    at: float  # seconds since the epoch
    change: str
    storyboard: Storyboard
    folder: str | None = None  # the published folder's name; None: not rendered


class History(BaseModel):
    video: str  # this video's id, the same in every version
    versions: list[Version] = Field(min_length=1)

    @classmethod
    def begun(cls, storyboard: Storyboard, change: str = "made") -> History:
        return cls(video=uuid.uuid4().hex[:12],
                   versions=[Version(version=1, at=time.time(), change=change,
                                     storyboard=storyboard)])

    @property
    def current(self) -> Version:
        return self.versions[-1]

    def version(self, number: int) -> Version | None:
        return next((v for v in self.versions if v.version == number), None)

    def then(self, storyboard: Storyboard, change: str, number: int | None = None) -> History:
        """This history with `storyboard` as its next version (numbered `number`: past every
        version published anywhere, when another folder of the video went on from an earlier
        one)."""
        version = Version(version=number or self.current.version + 1, at=time.time(),
                          change=change, storyboard=storyboard)
        return self.model_copy(update={"versions": [*self.versions, version]})

    def amended(self, storyboard: Storyboard, note: str) -> History:
        """This history with its current version's storyboard changed by the render itself."""
        current = self.current.model_copy(update={
            "storyboard": storyboard, "change": f"{self.current.change}; {note}"})
        return self.model_copy(update={"versions": [*self.versions[:-1], current]})

    def published(self, folder: str) -> History:
        """This history with its current version published to `folder`."""
        current = self.current.model_copy(update={"folder": folder})
        return self.model_copy(update={"versions": [*self.versions[:-1], current]})

    def scene_ids(self) -> set[str]:
        return {scene.id for v in self.versions for scene in v.storyboard.scenes}

    def takes(self, scene_id: str, media: str) -> dict[int, int]:
        """The takes of a scene's `media` that rendered versions used → the first using each."""
        found: dict[int, int] = {}
        for v in self.versions:
            for scene in v.storyboard.scenes if v.folder else ():
                if scene.id == scene_id:
                    found.setdefault(getattr(scene.takes, media), v.version)
        return found


# The node kind that makes each medium of a take.
TAKE_KINDS = {"image": "image", "clip": "clip", "speech": "tts"}


def published_takes(manifests: list[dict], scene_id: str, media: str) -> dict[int, dict]:
    """The takes of a scene's `media` that published manifests (any folder of the video) hold,
    each with the node that made it."""
    return {node["params"].get("take", 1): node for manifest in manifests
            for node in manifest.get("nodes", [])
            if node.get("scene") == scene_id and node.get("kind") == TAKE_KINDS[media]}


def load(storyboard_path: Path) -> History:
    """The history beside a storyboard; one of a single version where there is none yet. A
    storyboard.json edited by hand since it was published is the history's next version."""
    folder = storyboard_path.parent
    on_disk = Storyboard.model_validate_json(storyboard_path.read_text())
    if not (folder / HISTORY_FILE).is_file():
        history = History.begun(on_disk)
        return history.published(folder.name) if (folder / "manifest.json").is_file() else history
    history = History.model_validate_json((folder / HISTORY_FILE).read_text(encoding="utf-8"))
    published_here = [v for v in history.versions if v.folder == folder.name]
    if published_here and published_here[-1].storyboard != on_disk:
        return history.then(on_disk, "storyboard.json edited by hand")
    return history


def save(history: History, folder: Path) -> None:
    """Write `history` into `folder` atomically: a reader sees the old one or the new one."""
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{HISTORY_FILE}-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(history.model_dump_json(indent=2))
    os.chmod(temp, 0o644)
    os.replace(temp, folder / HISTORY_FILE)
