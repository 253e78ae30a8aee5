"""Jobs are flow runs of the deployments: created, read, listed and cancelled through the
Prefect API. Nothing is kept here, so a restarted API loses nothing and sees runs started
from the UI too; a key's runs carry a tag naming a prefix of its hash."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import Artifact, FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.states import Cancelled, Cancelling
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, model_validator

from flows.choices import ProfileName, StyleName
from flows.creative import Creative
from flows.options import RenderOptions
from flows.report import SUMMARY
from tasks.review import drift, review_rows
from flows.editing import Operation, Revert
from tasks.storyboard import MAX_SCENES, MAX_SCRIPT_CHARS, Aspect, Storyboard, Text

MAKE, RENDER = "make-video/make-video", "render-storyboard/render-storyboard"
RERUN = "rerun-with-edits/rerun-with-edits"
KEY_TAG = "reelflow-api-key:"  # + the key's hash prefix: whose job it is
# A run that owes a webhook: the tag until it is delivered, the URL in the run's labels.
WEBHOOK_PENDING, WEBHOOK_LABEL = "reelflow-webhook", "reelflow.webhook"


class Status(str, Enum):
    queued = "queued"
    started = "started"
    progress = "progress"
    finished = "finished"
    failed = "failed"
    canceled = "canceled"


# Prefect's state types behind each status (started and progress are both RUNNING).
STATE_TYPES = {
    Status.queued: [StateType.SCHEDULED, StateType.PENDING, StateType.PAUSED],
    Status.started: [StateType.RUNNING],
    Status.progress: [StateType.RUNNING],
    Status.finished: [StateType.COMPLETED],
    Status.failed: [StateType.FAILED, StateType.CRASHED],
    Status.canceled: [StateType.CANCELLING, StateType.CANCELLED],
}
# A key's jobs at once: queued, running, and cancelling (still running until it stops).
ACTIVE = [*STATE_TYPES[Status.queued], *STATE_TYPES[Status.started], StateType.CANCELLING]

Prompt = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]


class JobRequest(BaseModel):
    """A video to make from a prompt, or a storyboard to render, and how."""

    model_config = ConfigDict(extra="forbid")

    prompt: Prompt | None = Field(None, description="What the video is about (1-2000 characters)")
    script: Text(MAX_SCRIPT_CHARS, paragraphs=True) | None = Field(
        None, description="Your own script instead of a prompt: one scene per paragraph")
    storyboard: Storyboard | None = Field(None, description="A storyboard to render instead, as "
                                          "`reelflow plan` writes it")
    scenes: int = Field(6, ge=1, le=MAX_SCENES)
    aspect: Aspect = Aspect.portrait
    style: StyleName = StyleName("documentary")
    voice: str | None = Field(None, max_length=100)
    language: str | None = Field(None, max_length=20)
    music: bool = True
    seed: int = Field(0, ge=0)
    cast: list[str] | None = None
    places: list[str] | None = None
    creative: Creative = Creative()
    profile: ProfileName | None = None
    short_side: int | None = Field(None, ge=64, le=4096)
    max_cost: float | None = Field(None, ge=0)
    webhook: HttpUrl | None = Field(None, description="POSTed the job's document, signed, "
                                    "when the job is over")
    dry_run: bool = Field(False, description=(
        "Only say what would be generated and reused and what it would cost (200, no job)"))

    @model_validator(mode="after")
    def _prompt_script_or_storyboard(self) -> JobRequest:
        if [self.prompt, self.script, self.storyboard].count(None) != 2:
            raise ValueError("give a prompt, a script or a storyboard (one of them)")
        return self

    def options(self) -> RenderOptions:
        return RenderOptions(profile=self.profile, short_side=self.short_side,
                             max_cost=self.max_cost)

    def deployment(self) -> str:
        return RENDER if self.storyboard else MAKE

    def parameters(self) -> dict[str, Any]:
        """The flow run's parameters (no secrets: the key is only a tag's hash prefix)."""
        options = self.options().model_dump(mode="json", exclude_none=True)
        if self.storyboard:
            return {"storyboard": self.storyboard.model_dump(mode="json"), "options": options}
        return {"topic": self.prompt, "script": self.script, "scenes": self.scenes,
                "aspect": self.aspect.value, "style": StyleName(self.style).value,
                "voice": self.voice, "language": self.language, "music": self.music,
                "seed": self.seed, "cast": self.cast, "places": self.places,
                "creative": self.creative.model_dump(mode="json", exclude_none=True),
                "options": options}


class SceneChange(BaseModel):
    """One scene's new narration, picture, on-screen text and/or how it is shot (at least one
    of them; flows/editing.py's EditScene checks each)."""

    model_config = ConfigDict(extra="forbid")
    narration: str | None = None
    visual_prompt: str | None = None
    on_screen_text: str | None = None
    shot: str | None = None
    intensity: float | None = None
    physics: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> SceneChange:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError("give narration, visual_prompt, on_screen_text, shot, intensity or "
                             "physics")
        return self


class EditRequest(BaseModel):
    """The next version of a job's video: scene operations in order, or an earlier version."""

    model_config = ConfigDict(extra="forbid")
    operations: list[Operation] = Field([], max_length=200, description=(
        "edit, add, delete, move, trim, retake or use (a take made before), in order"))
    revert: Revert | None = Field(None, description="Instead of operations: an earlier version")
    dry_run: bool = Field(False, description=(
        "Only say what would be generated and reused and what it would cost (200, no job)"))


class Job(BaseModel):
    """What the API says of a job, all of it read from Prefect."""

    id: str
    status: Status
    progress: float = Field(ge=0, le=100)
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    video_url: str | None = None
    cost_usd: float | None = None
    saved_usd: float | None = None
    generated: int | None = None
    cached: int | None = None
    # Shots still failing their gate after their attempts, and the share that drifted
    # (tasks/review.py); `reelflow review` approves or rejects them.
    review: list[dict] | None = None
    drift: dict | None = None
    error: str | None = None


class Accepted(BaseModel):
    id: str
    status: Status
    created_at: datetime | None


def owner_tag(key_hash: str) -> str:
    return KEY_TAG + key_hash[:16]


async def create(client: PrefectClient, request: JobRequest, key_hash: str,
                 idempotency_key: str | None) -> FlowRun:
    owed = {"tags": [WEBHOOK_PENDING], "labels": {WEBHOOK_LABEL: str(request.webhook)}} \
        if request.webhook else {"tags": [], "labels": None}
    return await _run_of(client, request.deployment(), parameters=request.parameters(),
                         tags=[owner_tag(key_hash), *owed["tags"]], labels=owed["labels"],
                         idempotency_key=idempotency_key)


async def rerun(client: PrefectClient, run: FlowRun, storyboard: Path, edits: EditRequest,
                key_hash: str) -> FlowRun:
    """A new job: the next version of the job's video, rendered with the job's options."""
    return await _run_of(client, RERUN, parameters={
        "video": str(storyboard),
        "operations": [operation.model_dump(mode="json") for operation in edits.operations],
        "revert": edits.revert and edits.revert.model_dump(),
        "options": run.parameters.get("options", {})}, tags=[owner_tag(key_hash)])


# A deployment keeps its id while it exists: read once per Prefect server, not per job.
_deployment_ids: dict[tuple[str, str], UUID] = {}


async def _run_of(client: PrefectClient, deployment: str, **run: Any) -> FlowRun:
    known = (str(client.api_url), deployment)
    if known in _deployment_ids:
        try:
            return await client.create_flow_run_from_deployment(_deployment_ids[known], **run)
        except httpx.HTTPStatusError as error:
            if error.response.status_code != 404:  # else: deleted, and made again anew
                raise
    _deployment_ids[known] = (await client.read_deployment_by_name(deployment)).id
    return await client.create_flow_run_from_deployment(_deployment_ids[known], **run)


async def owned(client: PrefectClient, job_id: str, key_hash: str | None) -> FlowRun | None:
    """The flow run of `job_id` if the key made it (any run: None, for a signed link); None
    for any other id (no hint which)."""
    try:
        run_id = UUID(job_id)
    except ValueError:
        return None
    tags = FlowRunFilterTags(all_=[owner_tag(key_hash)]) if key_hash else None
    runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
        id=FlowRunFilterId(any_=[run_id]), tags=tags))
    return runs[0] if runs else None


async def listed(client: PrefectClient, key_hash: str, status: Status | None, limit: int,
                 offset: int) -> list[FlowRun]:
    state = (FlowRunFilterState(type=FlowRunFilterStateType(any_=STATE_TYPES[status]))
             if status else None)
    return await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[owner_tag(key_hash)]),
                                      state=state),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit, offset=offset)


async def active_count(client: PrefectClient, key_hash: str) -> int:
    return await client.count_flow_runs(flow_run_filter=FlowRunFilter(
        tags=FlowRunFilterTags(all_=[owner_tag(key_hash)]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE))))


async def cancel(client: PrefectClient, run: FlowRun) -> None:
    """A run not yet started is cancelled at once; a running one is asked to stop (its runner
    kills the process: provider calls and ffmpeg stop, nothing is published)."""
    started = run.state_type in (StateType.RUNNING, StateType.PENDING)
    await client.set_flow_run_state(run.id, Cancelling() if started else Cancelled(),
                                    force=True)


def is_over(run: FlowRun) -> bool:
    return run.state_type in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED,
                              StateType.CANCELLED, StateType.CANCELLING)


async def summary(client: PrefectClient, run: FlowRun) -> dict[str, Any] | None:
    """The published video's summary, from the run's table artifact (flows/report.py)."""
    for artifact in await _artifacts(client, run):
        if artifact.type == "table" and artifact.description == SUMMARY and artifact.data:
            rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
            return rows[0] if rows else None
    return None


async def document(client: PrefectClient, run: FlowRun, video_url: str) -> Job:
    status = _status(run.state_type)
    progress = 100.0 if status is Status.finished else 0.0
    found = None
    if status in (Status.started, Status.progress):
        progress = await _progress(client, run)
        status = Status.progress if progress > 0 else Status.started
    elif status is Status.finished:
        found = await summary(client, run)
    published = found or {}
    manifest = published_file(found, "manifest")
    shots = json.loads(manifest.read_text()) if manifest else None
    return Job(
        id=str(run.id), status=status, progress=progress, created_at=run.created,
        started_at=run.start_time, finished_at=run.end_time if is_over(run) else None,
        video_url=(published.get("url") or video_url) if found else None,
        cost_usd=published.get("cost_usd"),
        saved_usd=published.get("saved_usd"), generated=published.get("generated"),
        cached=published.get("cached"),
        review=review_rows(shots) if shots else None, drift=drift(shots) if shots else None,
        error=run.state.message if status is Status.failed and run.state else None)


def _status(state: StateType | None) -> Status:
    for status, types in STATE_TYPES.items():
        if state in types:
            return status
    return Status.queued


async def _progress(client: PrefectClient, run: FlowRun) -> float:
    found = await progress_artifact(client, run)
    return float(found.data) if found and found.data is not None else 0.0


async def progress_artifact(client: PrefectClient, run: FlowRun) -> Artifact | None:
    """The run's progress (flows/report.py): its share done, and each node kind's in its
    description."""
    return next((artifact for artifact in await _artifacts(client, run)
                 if artifact.type == "progress"), None)


async def _artifacts(client: PrefectClient, run: FlowRun) -> list[Artifact]:
    return await client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))


def published_file(found: dict[str, Any] | None, name: str) -> Path | None:
    """A file of the published folder on this machine (video, storyboard or manifest)."""
    if not found or not found.get(name):
        return None
    path = Path(found[name])
    return path if path.is_file() else None
