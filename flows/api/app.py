"""The HTTP API's routes. Every answer that is not a success is one error document naming
what was wrong; every request gets an id (X-Request-ID, and in each error) and one JSON log
line. Keys are checked on every /jobs route and never logged: a log names a key by a prefix
of its hash."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from prefect.client.orchestration import get_client
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Route

from cache import open_store
from config.bible import BibleError, load_profiles
from config.catalog import styles
from config.settings import Settings, load_settings
from flows.admission import Refused, problems, video_request, voice
from flows.api import jobs, links
from flows.api.errors import ApiError, count_request, in_process
from flows.api.jobs import Accepted, EditRequest, Job, JobRequest, SceneChange, Status
from flows.api.keys import Keys, RateLimits
from flows.api.mcp import mcp_server
from flows.api.metrics import Metrics
from flows.api.webhooks import Deliveries
from flows.editing import EditRefused, EditScene, NotFound
from flows.options import RenderOptions
from flows.rerun import next_version
from flows.web import pages
from tasks.preflight import RenderPreview
from tasks.ffmpeg import ffmpeg_exe
from tasks.storyboard import Character, Location, Storyboard, VideoRequest

MAX_BODY = 1_000_000  # bytes
# A route that takes `dry_run` answers 200 with what would be generated, instead of a job.
PREVIEW = {200: {"model": RenderPreview, "description": "dry_run: what would be generated "
                 "and reused, and the estimated cost; no job is made"}}
log = logging.getLogger("reelflow.api")


def create_app(settings: Settings, keys: Keys, public_url: str) -> FastAPI:
    async def lifespan(app: FastAPI):
        async with get_client() as client, agents.session_manager.run():
            app.state.prefect = client  # one Prefect client for every request
            secret = settings.api_webhook_secret
            sender = asyncio.create_task(Deliveries(secret.get_secret_value(), video_url).run(
                client)) if secret else None
            yield
            if sender:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)

    app = FastAPI(title="reelflow", version="1", lifespan=lifespan,
                  description="Make videos from a prompt, a script or a storyboard; every job is a "
                              "Prefect flow run of reelflow's deployments.")
    app.state.settings, app.state.keys, app.state.metrics = settings, keys, Metrics()
    # Links signed with a secret made here die with the process: `reelflow api` sets one.
    url_secret = (settings.api_url_secret.get_secret_value() if settings.api_url_secret
                  else secrets.token_urlsafe(32))
    app.state.url_secret, app.state.public_url = url_secret, public_url
    app.state.limits = RateLimits(settings.api_requests_per_minute)
    if settings.api_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api_cors_origins,
                           allow_methods=["GET", "POST", "PATCH"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"])

    @app.middleware("http")
    async def request_id_and_log(request: Request, call_next):
        request.state.id = uuid.uuid4().hex
        request.state.key = None
        started = time.perf_counter()
        length = request.headers.get("content-length")
        # The web page's new-video form carries a track and pictures; the API's JSON, less.
        limit = pages.UPLOAD_BODY if request.url.path == "/new" else MAX_BODY
        if length and (not length.isdigit() or int(length) > limit):
            response = _error(request, ApiError(413, "too_large", f"the body is over {limit} "
                                                "bytes"))
        else:
            response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.id
        route = request.scope.get("route")
        path = route.path if route else "unmatched"  # not the raw path: ids would be labels
        seconds = time.perf_counter() - started
        request.app.state.metrics.observe(path, request.method, response.status_code, seconds)
        log.info(json.dumps({
            "request_id": request.state.id, "method": request.method, "route": path,
            "status": response.status_code, "latency_ms": round(1000 * seconds, 1),
            "key": request.state.key[:8] if request.state.key else None}))
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        return _error(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        return _error(request, _invalid(error.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        names = {404: "not_found", 405: "method_not_allowed"}
        return _error(request, ApiError(error.status_code,
                                        names.get(error.status_code, "http_error"),
                                        str(error.detail), headers=dict(error.headers or {})))

    @app.exception_handler(httpx.HTTPError)
    async def prefect_unavailable(request: Request, error: httpx.HTTPError):
        log.warning("request %s: the Prefect API failed: %s", request.state.id, error)
        return _error(request, ApiError(503, "unavailable", "the job store (Prefect) did not "
                                        "answer; try again", retryable=True,
                                        headers={"Retry-After": "5"}))

    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception):
        log.exception("request %s failed", request.state.id)
        return _error(request, ApiError(500, "internal", "the API failed; the request id "
                                        "names it in the API's log", retryable=True))


    async def owned(request: Request, job_id: str, key_hash: str | None):
        run = await jobs.owned(request.app.state.prefect, job_id, key_hash)
        if run is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return run

    def video_url(job_id: str) -> str:
        return f"{public_url}/jobs/{job_id}/video"

    @app.get("/styles", tags=["catalog"])
    async def list_styles(key_hash: Key) -> list[dict[str, Any]]:
        """The visual styles a job can name, as config/styles.yaml sets them."""
        return [{"name": name, **style} for name, style in styles().items()]

    @app.get("/characters", tags=["catalog"])
    async def list_characters(key_hash: Key) -> list[dict[str, Any]]:
        """The characters a job's `cast` can name: the shipped ones and the server's folders."""
        return _profiles(Character, settings.characters, exclude={"references", "sprites"})

    @app.get("/places", tags=["catalog"])
    async def list_places(key_hash: Key) -> list[dict[str, Any]]:
        """The locations a job's `places` can name."""
        return _profiles(Location, settings.locations, exclude={"references"})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> dict[str, str]:
        wrong = []
        if await request.app.state.prefect.api_healthcheck() is not None:  # it never raises
            wrong.append("the Prefect API does not answer")
        try:
            stored = await asyncio.wait_for(asyncio.to_thread(_store_takes, settings.store), 30)
        except asyncio.TimeoutError:
            stored = False
        if not stored:
            wrong.append(f"the store {settings.store} takes no artifact")
        if not _ffmpeg():
            wrong.append("there is no ffmpeg")
        if wrong:
            raise ApiError(503, "not_ready", "not ready: " + "; ".join(wrong), retryable=True)
        return {"status": "ready"}

    @app.get("/metrics/prometheus", tags=["health"], response_class=PlainTextResponse)
    async def metrics(request: Request) -> PlainTextResponse:
        exposition = await request.app.state.metrics.exposition(request.app.state.prefect)
        return PlainTextResponse(exposition, media_type=CONTENT_TYPE_LATEST)

    @app.post("/jobs", status_code=202, tags=["jobs"], responses=PREVIEW)
    async def create_job(request: Request, body: JobRequest, key_hash: Key,
                         idempotency_key: Annotated[str | None, Header(max_length=200)] = None
                         ) -> Accepted:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise ApiError(415, "unsupported_media_type", "send the job as application/json")
        asked = _check(body, settings)
        if body.dry_run:
            return await run_in_threadpool(_preview, asked, body.options())
        if body.webhook and settings.api_webhook_secret is None:
            raise ApiError(422, "invalid_request", "webhook: this server has no webhook secret "
                           "(REELFLOW_API_WEBHOOK_SECRET) to sign it with",
                           details=[{"field": "webhook", "message": "no webhook secret"}])
        client = request.app.state.prefect
        if await jobs.active_count(client, key_hash) >= settings.api_jobs_at_once:
            raise _too_many_jobs(settings)
        run = await jobs.create(client, body, key_hash, _idempotency(idempotency_key, key_hash,
                                                                     body))
        return Accepted(id=str(run.id), status=Status.queued, created_at=run.created)

    @app.get("/jobs", tags=["jobs"])
    async def list_jobs(request: Request, key_hash: Key,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50,
                        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                        status: Status | None = None) -> list[Job]:
        client = request.app.state.prefect
        runs = await jobs.listed(client, key_hash, status, limit, offset)
        found = [await jobs.document(client, run, video_url(str(run.id))) for run in runs]
        # started and progress are both a running flow run: tell them apart here.
        return [job for job in found if status is None or job.status is status]

    @app.get("/jobs/{job_id}", tags=["jobs"])
    async def read_job(request: Request, job_id: str, key_hash: Key) -> Job:
        run = await owned(request, job_id, key_hash)
        return await jobs.document(request.app.state.prefect, run, video_url(job_id))

    @app.post("/jobs/{job_id}/cancel", status_code=202, tags=["jobs"])
    async def cancel_job(request: Request, job_id: str, key_hash: Key) -> Job:
        client = request.app.state.prefect
        run = await owned(request, job_id, key_hash)
        if jobs.is_over(run):
            raise ApiError(409, "conflict", f"job {job_id} is already over")
        await jobs.cancel(client, run)
        return await jobs.document(client, await client.read_flow_run(run.id), video_url(job_id))

    async def edited(request: Request, job_id: str, key_hash: str, edits: EditRequest) -> Accepted:
        """A new job rendering the next version of the job's video: only the nodes the
        operations touched are generated (with `dry_run`, only said)."""
        client = request.app.state.prefect
        run = await owned(request, job_id, key_hash)
        path = jobs.published_file(await jobs.summary(client, run), "storyboard")
        if path is None:
            raise ApiError(409, "not_finished", f"job {job_id} has not finished: there is "
                           "nothing to edit yet")
        options = RenderOptions(**run.parameters.get("options", {}))
        try:
            history = await run_in_threadpool(next_version, path, edits.operations, edits.revert,
                                              options.settings())
        except ValidationError as error:
            raise _invalid(error.errors()) from None
        except NotFound as error:
            raise ApiError(404, "not_found", str(error)) from None
        except EditRefused as error:
            field = str(error).split(":", 1)[0]
            raise ApiError(422, "invalid_request", str(error),
                           details=[{"field": field, "message": str(error)}]) from None
        if edits.dry_run:
            return await run_in_threadpool(_preview, history.current.storyboard, options)
        if await jobs.active_count(client, key_hash) >= settings.api_jobs_at_once:
            raise _too_many_jobs(settings)
        new = await jobs.rerun(client, run, path, edits, key_hash)
        return Accepted(id=str(new.id), status=Status.queued, created_at=new.created)

    @app.post("/jobs/{job_id}/edits", status_code=202, tags=["jobs"], responses=PREVIEW)
    async def edit_video(request: Request, job_id: str, edits: EditRequest,
                         key_hash: Key) -> Accepted:
        """Scene operations (edit, add, delete, move, trim, retake, use a take) or a revert."""
        return await edited(request, job_id, key_hash, edits)

    @app.patch("/jobs/{job_id}/scenes/{scene_id}", status_code=202, tags=["jobs"],
               responses=PREVIEW)
    async def edit_scene(request: Request, job_id: str, scene_id: str, change: SceneChange,
                         key_hash: Key, dry_run: bool = False) -> Accepted:
        return await edited(request, job_id, key_hash, EditRequest(
            operations=[_scene_edit(scene_id, change.model_dump())], dry_run=dry_run))

    @app.patch("/jobs/{job_id}/scenes", status_code=202, tags=["jobs"], responses=PREVIEW)
    async def edit_scenes(request: Request, job_id: str,
                          edits: Annotated[list[EditScene], Body(min_length=1, max_length=200)],
                          key_hash: Key, dry_run: bool = False) -> Accepted:
        return await edited(request, job_id, key_hash,
                            EditRequest(operations=edits, dry_run=dry_run))

    async def published(request: Request, job_id: str, key_hash: str | None, name: str) -> Path:
        client = request.app.state.prefect
        run = await owned(request, job_id, key_hash)
        path = jobs.published_file(await jobs.summary(client, run), name)
        if path is None:
            raise ApiError(409, "not_finished", f"job {job_id} has no published {name} here "
                           "(it has not finished, or it was published to another machine)")
        return path

    @app.get("/jobs/{job_id}/video", tags=["jobs"], response_class=FileResponse,
             responses={200: {"content": {"video/mp4": {}}}, 206: {"description": "A range"}})
    async def video(request: Request, job_id: str,
                    expires: Annotated[int | None, Query(ge=0, le=2**40)] = None,
                    signature: Annotated[str | None, Query(max_length=128)] = None,
                    authorization: Annotated[str | None, Header()] = None) -> FileResponse:
        """With a key, or with the signature of a link from /video-url (or the UI's link)."""
        key_hash = None if links.is_valid(url_secret, job_id, expires, signature) else (
            await authorized(request, authorization))
        # Starlette answers Range requests (206) from the file: a <video> element can seek.
        return FileResponse(await published(request, job_id, key_hash, "video"),
                            media_type="video/mp4")

    @app.get("/jobs/{job_id}/video-url", tags=["jobs"])
    async def video_link(request: Request, job_id: str, key_hash: Key,
                         expiration_seconds: Annotated[int, Query(ge=60, le=links.WEEK)] = 3600
                         ) -> dict[str, str]:
        """A link that needs no key: the bucket's signed URL when the video was published to
        one, else the API's own, signed for `expiration_seconds`."""
        run = await owned(request, job_id, key_hash)
        found = await jobs.summary(request.app.state.prefect, run)
        if not found:
            raise ApiError(409, "not_finished", f"job {job_id} has not finished")
        return {"url": found.get("url") or links.signed_video_url(
            public_url, url_secret, job_id, expiration_seconds)}

    @app.get("/jobs/{job_id}/storyboard", tags=["jobs"])
    async def storyboard(request: Request, job_id: str, key_hash: Key) -> FileResponse:
        return FileResponse(await published(request, job_id, key_hash, "storyboard"),
                            media_type="application/json")

    @app.get("/jobs/{job_id}/manifest", tags=["jobs"])
    async def manifest(request: Request, job_id: str, key_hash: Key) -> FileResponse:
        return FileResponse(await published(request, job_id, key_hash, "manifest"),
                            media_type="application/json")

    # Agents: the same operations as MCP tools, each a call of this app with the caller's key.
    agents = mcp_server(lambda ctx: in_process(
        app, public_url, (ctx.headers or {}).get("authorization", "")))
    # No DNS-rebinding check (it would refuse every host name but localhost): a page that
    # rebinds a name to this server still has no key.
    agents.streamable_http_app(stateless_http=True, json_response=True,
                               transport_security=TransportSecuritySettings(
                                   enable_dns_rebinding_protection=False))
    app.router.routes.append(Route("/mcp", _KeyRequired(StreamableHTTPASGIApp(
        agents.session_manager)), methods=["GET", "POST", "DELETE"]))
    pages.install(app)  # the web page, at /
    return app


class _KeyRequired:
    """An ASGI app behind the API's keys. Not its rate: the API calls it makes count."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        request = Request(scope, receive)
        try:
            _key(request, request.headers.get("authorization"))
        except ApiError as error:
            await _error(request, error)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _profiles(model, folders, exclude: set[str]) -> list[dict[str, Any]]:
    """The bible's profiles of a kind, without their pictures' paths on this server."""
    try:
        found = load_profiles(model, folders)
    except BibleError as error:  # the server's folders, not the client's request
        raise ApiError(503, "misconfigured", str(error)) from None
    return [profile.model_dump(mode="json", exclude=exclude) for profile in found.values()]


async def authorized(request: Request,
                     authorization: Annotated[str | None, Header()] = None) -> str:
    """The hash of the request's key; 401 without a valid one (no hint which part was
    wrong), 429 with Retry-After over the key's rate."""
    found = _key(request, authorization)
    count_request(request, found)
    return found


Key = Annotated[str, Depends(authorized)]


def _key(request: Request, authorization: str | None) -> str:
    found = request.app.state.keys.match(authorization)
    if found is None:
        raise ApiError(401, "unauthorized", "a valid API key is required (Authorization: "
                       "Bearer KEY)", headers={"WWW-Authenticate": "Bearer"})
    request.state.key = found
    return found


def _too_many_jobs(settings: Settings) -> ApiError:
    return ApiError(429, "too_many_jobs", f"this key has {settings.api_jobs_at_once} jobs "
                    "queued or running; wait for one to finish", retryable=True,
                    headers={"Retry-After": "10"})


def _error(request: Request, error: ApiError) -> JSONResponse:
    return JSONResponse(status_code=error.status, headers=error.headers, content={
        "error": error.error, "message": error.message, "details": error.details,
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "request_id": getattr(request.state, "id", None), "retryable": error.retryable})


def _invalid(errors: list[dict], renamed: dict[str, str] | None = None) -> ApiError:
    return _refused(Refused(problems(errors, root="body", renamed=renamed)))


def _refused(refused: Refused) -> ApiError:
    """422 naming each field that is wrong; the message names the first."""
    return ApiError(422, "invalid_request", str(refused), details=[
        {"field": field, "message": message} for field, message in refused.problems])


def _check(body: JobRequest, settings: Settings) -> VideoRequest | Storyboard:
    """What the flow would refuse, refused before a run is created: the request as the
    planner reads it, its cast and places by id, and its voice against its language, with
    the settings of the profile it names (the server's own unless it names one: the settings
    are read once, not on every job). Returns what the job renders from."""
    try:
        if body.profile:
            settings = load_settings(body.profile.value)
        if body.storyboard:
            voice(body.storyboard.voice, body.storyboard.language, settings)
            return body.storyboard
        return video_request(settings, body.cast or [], body.places or [], {"topic": "prompt"},
                             creative=body.creative, topic=body.prompt,
                             script=body.script, scenes=body.scenes, aspect=body.aspect,
                             style=body.style, voice=body.voice, language=body.language,
                             music=body.music, seed=body.seed)[0]
    except Refused as refused:
        raise _refused(refused) from None


def _preview(asked: VideoRequest | Storyboard, options: RenderOptions) -> JSONResponse:
    """A dry run's answer: what rendering `asked` with `options` would generate and reuse,
    and cost; no provider is called (reading the store is blocking work: not on the loop)."""
    settings = options.settings()
    preview = (RenderPreview.of(asked, settings) if isinstance(asked, Storyboard)
               else RenderPreview.of_request(asked, settings))
    return JSONResponse(preview.model_dump(mode="json"))


def _scene_edit(scene_id: str, change: dict) -> EditScene:
    """A scene's change from its route, as an edit operation (a bad scene id: 422)."""
    try:
        return EditScene(scene=scene_id, **change)
    except ValidationError as error:
        raise _invalid(error.errors()) from None


def _idempotency(header: str | None, key_hash: str, body: JobRequest) -> str | None:
    """Prefect's idempotency key for a run: the same key and body give the same run."""
    if not header:
        return None
    material = json.dumps([key_hash, header, body.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _store_takes(location: str) -> bool:
    """Whether the store (a folder or a bucket) takes an artifact now: always the same one, so
    it is stored once and then found."""
    try:
        open_store(location).put_bytes(b"ready\n", "text/plain")
        return True
    except Exception as error:  # any reason is the same answer: not ready
        log.warning("the store %s took no artifact: %s", location, error)
        return False


def _ffmpeg() -> bool:
    try:
        return Path(ffmpeg_exe()).is_file()
    except RuntimeError:  # imageio-ffmpeg found no binary
        return False
