"""The manifest of a render (every node: key, outputs, provider, status, cost, timing) and the
summary the CLI prints from it."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel

from tasks.nodes import NodeKind, NodeOutcome, Status
from tasks.review import ShotReview, drift, review_rows
from tasks.router import RouteCost

MANIFEST_VERSION = 1


class ManifestNode(BaseModel):
    id: str
    kind: NodeKind
    scene: str | None
    status: Status
    key: str | None  # None for publish, which is not a stored node
    provider: str
    model: str
    params: dict
    outputs: dict[str, str]  # output name → blob digest
    cost_usd: float  # paid by this run
    saved_usd: float  # what reuse saved this run
    seconds: float
    fallbacks: list[str] = []  # why preferred providers did not serve it
    review: ShotReview | None = None  # a shot's gate over its attempts (tasks/gates.py)

    @classmethod
    def of(cls, outcome: NodeOutcome) -> ManifestNode:
        record = outcome.record
        return cls(
            id=outcome.id, kind=outcome.kind, scene=outcome.scene, status=outcome.status,
            key=record.key, provider=record.provider, model=record.model,
            params=record.parts["params"],
            outputs={name: artifact.digest for name, artifact in outcome.outputs.items()},
            cost_usd=outcome.cost_usd, saved_usd=outcome.saved_usd, seconds=outcome.seconds,
            fallbacks=outcome.fallbacks, review=outcome.review,
        )


class LoudnessReport(BaseModel):
    """The published video's soundtrack as ffmpeg's EBU R128 meter measured it."""

    target_lufs: float
    integrated_lufs: float
    true_peak_dbtp: float
    passes: int  # encodes of the soundtrack it took to meet the target


class Manifest(BaseModel):
    manifest_version: int = MANIFEST_VERSION
    title: str
    video_digest: str
    url: str | None  # where the published video can be read, when published to a bucket
    created_at: float
    nodes: list[ManifestNode]
    generated: int
    cached: int
    placeholders: int = 0  # pictures no provider could make: the next run asks again
    cost_usd: float
    saved_usd: float
    # What the run did other than what the profile promised (tasks/degraded.py).
    warnings: list[str] = []
    loudness: LoudnessReport | None = None
    # Which video this is a version of (tasks/history.py): `cache gc` keeps a history's versions.
    video: str | None = None
    version: int | None = None
    routing: RouteCost | None = None  # with a quality: the clips as routed and unrouted

    @classmethod
    def of(cls, title: str, video_digest: str, nodes: list[ManifestNode],
           url: str | None = None, warnings: list[str] | None = None,
           loudness: LoudnessReport | None = None, video: str | None = None,
           version: int | None = None, routing: RouteCost | None = None) -> Manifest:
        return cls(
            title=title, video_digest=video_digest, url=url, created_at=round(time.time(), 3),
            nodes=nodes, warnings=warnings or [], loudness=loudness, video=video, version=version,
            routing=routing,
            generated=sum(node.status == "generated" for node in nodes),
            cached=sum(node.status == "cached" for node in nodes),
            placeholders=sum(node.status == "placeholder" for node in nodes),
            cost_usd=round(sum(node.cost_usd for node in nodes), 6),
            saved_usd=round(sum(node.saved_usd for node in nodes), 6),
        )


class SummaryNode(BaseModel):
    id: str
    kind: NodeKind
    scene: str | None
    status: Status
    cost_usd: float


class RenderSummary(BaseModel):
    """What `--json` prints: where the video is, and what was generated, reused and paid."""

    video: Path
    storyboard: Path
    manifest: Path
    url: str | None = None  # the published video's URL, when published to a bucket
    nodes: list[SummaryNode]
    generated: int
    cached: int
    placeholders: int = 0
    cost_usd: float
    saved_usd: float
    warnings: list[str] = []
    # Shots still failing their gate after their attempts: a person should look (`reelflow
    # review`), and the share of shots whose likeness drifted (tasks/review.py).
    review: list[dict] = []
    drift: dict = {}
    routing: RouteCost | None = None

    @classmethod
    def of(cls, folder: Path, manifest: Manifest) -> RenderSummary:
        shown = manifest.model_dump(mode="json")
        return cls(
            video=folder / "video.mp4", storyboard=folder / "storyboard.json",
            manifest=folder / "manifest.json", url=manifest.url,
            review=review_rows(shown), drift=drift(shown),
            nodes=[SummaryNode(**node.model_dump(include=set(SummaryNode.model_fields)))
                   for node in manifest.nodes],
            **manifest.model_dump(include={"generated", "cached", "placeholders", "cost_usd",
                                            "saved_usd", "warnings", "routing"}),
        )
