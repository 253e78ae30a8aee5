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

    def then(self, storyboard: Storyboard, change: str) -> History:
        """This history with `storyboard` as its next version."""
        version = Version(version=self.current.version + 1, at=time.time(), change=change,
                          storyboard=storyboard)
        return self.model_copy(update={"versions": [*self.versions, version]})

    def published(self, folder: str) -> History:
        """This history with its current version published to `folder`."""
        current = self.current.model_copy(update={"folder": folder})
        return self.model_copy(update={"versions": [*self.versions[:-1], current]})

    def scene_ids(self) -> set[str]:
        return {scene.id for v in self.versions for scene in v.storyboard.scenes}

    def takes(self, scene_id: str, media: str) -> dict[int, int]:
        """The takes of a scene's `media` that versions used → the first version using each."""
        found: dict[int, int] = {}
        for v in self.versions:
            for scene in v.storyboard.scenes:
                if scene.id == scene_id:
                    found.setdefault(getattr(scene.takes, media), v.version)
        return found


def load(storyboard_path: Path) -> History:
    """The history beside a storyboard; one of a single version where there is none yet."""
    path = storyboard_path.parent / HISTORY_FILE
    if path.is_file():
        return History.model_validate_json(path.read_text(encoding="utf-8"))
    history = History.begun(Storyboard.model_validate_json(storyboard_path.read_text()))
    manifest = storyboard_path.parent / "manifest.json"
    return history.published(storyboard_path.parent.name) if manifest.is_file() else history


def save(history: History, folder: Path) -> None:
    """Write `history` into `folder` atomically: a reader sees the old one or the new one."""
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{HISTORY_FILE}-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(history.model_dump_json(indent=2))
    os.chmod(temp, 0o644)
    os.replace(temp, folder / HISTORY_FILE)
