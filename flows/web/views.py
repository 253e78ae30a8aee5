"""What the web page shows of a key's jobs, read the way the API reads them (flows/api/jobs.py):
the flow run, its published folder (storyboard, manifest, history) and the store's blobs.
Everything here that reads files or the store is blocking work: pages run it in a thread."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from starlette.concurrency import run_in_threadpool

from cache import open_store
from flows.api import jobs
from flows.report import KindProgress, kinds_done
from tasks import history as histories
from tasks.ffmpeg import MediaError, probe
from tasks.history import TAKE_KINDS, History
from tasks.review import ShotReview, still_flagged
from tasks.storyboard import NARRATOR, Line, Scene, Storyboard

TAKE_LABELS = {"image": "picture", "clip": "clip", "speech": "voice"}  # as a card names them


@dataclass
class Published:
    """A finished job's folder on this machine."""

    folder: Path
    storyboard: Storyboard
    manifest: dict
    history: History
    versions: list[dict]  # the manifests of every published version of the video

    def output(self, kind: str, scene: str | None, name: str) -> str | None:
        for node in self.manifest["nodes"]:
            if node["kind"] == kind and node.get("scene") == scene:
                return node["outputs"].get(name)
        return None

    def pictures(self) -> set[str]:
        """The pictures any version of this video published (keyframes, their takes, the
        thumbnail): the blobs its page may show, and no other."""
        return {digest for manifest in [self.manifest, *self.versions]
                for node in manifest.get("nodes", []) for name, digest in node["outputs"].items()
                if (node["kind"], name) in (("image", "image"), ("compose", "thumbnail"))}


@dataclass
class Take:
    number: int
    current: bool
    picture: str | None = None  # a keyframe take's digest


@dataclass
class SceneCard:
    number: int
    scene: Scene
    keyframe: str | None
    clip_seconds: float | None
    gates: list[str]
    takes: dict[str, list[Take]] = field(default_factory=dict)

    @property
    def dialogue(self) -> bool:
        return is_dialogue(self.scene)

    @property
    def lines(self) -> list[Line]:
        return self.scene.lines

    @property
    def seconds(self) -> float:
        trim = self.scene.trim
        return round(trim.end - trim.start, 2) if trim else self.scene.duration

    @property
    def trim(self) -> tuple[float, float]:
        trim = self.scene.trim
        return (trim.start, trim.end) if trim else (0.0, self.clip_seconds or self.scene.duration)

    @property
    def trim_step(self) -> float:
        """About 0.1 s, so that the clip's own end is a step the handles can stand on."""
        length = self.clip_seconds or self.scene.duration
        return length / max(1, round(length * 10))


@dataclass
class Row:
    """A job in the list of videos."""

    id: str
    title: str
    job: jobs.Job
    seconds: float | None = None
    thumbnail: str | None = None


def is_dialogue(scene: Scene) -> bool:
    """Whether a card edits the scene line by line (else as one narration)."""
    return len(scene.lines) > 1 or any(line.speaker != NARRATOR for line in scene.lines)


def speakers(storyboard: Storyboard) -> dict[str, str]:
    """Who says a line, by id, as the page names them."""
    return {NARRATOR: "Narrator", **{c.id: c.name for c in storyboard.characters}}


def title_of(run: FlowRun, published: Published | None) -> str:
    if published:
        return published.storyboard.title
    asked = run.parameters
    if asked.get("topic"):
        return asked["topic"]
    if asked.get("script"):
        return asked["script"].strip().splitlines()[0]
    if asked.get("storyboard"):
        return asked["storyboard"].get("title", "A storyboard")
    return f"A new version of {Path(asked.get('video', 'a video')).parent.name}"


async def published(client: PrefectClient, run: FlowRun, store_location: str
                    ) -> Published | None:
    found = await jobs.summary(client, run)
    storyboard = jobs.published_file(found, "storyboard")
    manifest = jobs.published_file(found, "manifest")
    if storyboard is None or manifest is None:
        return None
    return await run_in_threadpool(_read, storyboard, manifest, store_location)


def _read(storyboard: Path, manifest: Path, store_location: str) -> Published:
    loaded = json.loads(manifest.read_text(encoding="utf-8"))
    history = histories.load(storyboard)
    versions = open_store(store_location).versions_of(history.video)
    return Published(storyboard.parent, history.current.storyboard, loaded, history, versions)


async def row(client: PrefectClient, run: FlowRun, store_location: str) -> Row:
    job = await jobs.document(client, run, video_url="")
    shown = (await published(client, run, store_location)
             if job.status is jobs.Status.finished else None)
    seconds = await run_in_threadpool(_length, shown.folder / "video.mp4") if shown else None
    return Row(str(run.id), title_of(run, shown), job, seconds,
               shown.output("compose", None, "thumbnail") if shown else None)


async def progress(client: PrefectClient, run: FlowRun) -> list[KindProgress]:
    """Per node kind: done, reused and paid so far (flows/report.py's progress artifact)."""
    found = await jobs.progress_artifact(client, run)
    return kinds_done(found.description) if found else []


def flagged(shown: Published, store_location: str) -> list[dict]:
    return still_flagged(shown.manifest, open_store(store_location))


def cards(shown: Published, store_location: str) -> list[SceneCard]:
    store = open_store(store_location)
    made = [*shown.versions, shown.manifest]
    found = []
    for number, scene in enumerate(shown.storyboard.ordered_scenes(), 1):
        clip = shown.output("clip", scene.id, "clip")
        found.append(SceneCard(
            number=number, scene=scene, keyframe=shown.output("image", scene.id, "image"),
            clip_seconds=_length(store.blob_path(clip)) if clip else None,
            gates=_gates([node for node in shown.manifest["nodes"]
                          if node.get("scene") == scene.id]),
            takes={media: _takes(shown.history, made, scene, media) for media in TAKE_KINDS}))
    return found


def _takes(history: History, manifests: list[dict], scene: Scene, media: str) -> list[Take]:
    nodes = histories.published_takes(manifests, scene.id, media)
    current = getattr(scene.takes, media)
    numbers = set(history.takes(scene.id, media)) | set(nodes) | {current}
    return [Take(number, number == current,
                 nodes[number]["outputs"].get("image") if number in nodes else None)
            for number in sorted(numbers)]


def _gates(nodes: list[dict]) -> list[str]:
    """What each shot's gate measured of the attempt used, in words."""
    said = []
    for node in nodes:
        if not node.get("review"):
            continue
        review = ShotReview.model_validate(node["review"])
        used = review.used
        scores = ", ".join(f"{member} {score:.2f}" for member, score in used.identity.items())
        look = f"look ΔE {used.look:.1f}" if used.look is not None else ""
        verdict = "; ".join(used.reasons) if used.reasons else "passed"
        said.append(f"{node['kind']}: " + " · ".join(filter(None, [
            scores and f"likeness {scores}", look,
            f"attempt {review.chosen} of {len(review.attempts)}", verdict])))
    return said


def _length(path: Path) -> float | None:
    try:
        return round(probe(path).duration, 2)
    except (MediaError, OSError):
        return None


def history_of(shown: Published) -> list[dict]:
    """The video's versions, newest first, for the page's history."""
    return [{"version": v.version, "change": v.change, "at": v.at,
             "current": v.version == shown.history.current.version}
            for v in reversed(shown.history.versions)]
