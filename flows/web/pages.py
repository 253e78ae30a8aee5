"""The web page `reelflow api` serves at /: sign in with a key, the key's videos, a form for a
new one, and a video's page with its player, live progress and scene cards to shape it.

Pages read jobs as the API does (flows/api/jobs.py, same key, same ownership). Every change
(a new video, a scene operation, a revert) is a request to the API itself, in process, with
the signed-in key: what the API refuses, the page shows beside the field it names, and each
change is first shown as the API's dry run (what it generates and costs) before it runs."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from cache import open_store
from cache.store import ArtifactStore
from config.bible import BibleError, load_profiles
from config.catalog import styles
from flows.api import jobs, links
from flows.api.errors import count_request, in_process
from flows.choices import DirectorName
from flows.editing import Operation
from flows.web import views
from flows.web.session import (CSRF_FIELD, Forged, NotSignedIn, Session, check_csrf,
                               check_same_origin, session_of, sign_in, sign_out)
from tasks.ffmpeg import probe, run_ffmpeg
from tasks.review import approve, shot_digest
from tasks.storyboard import Aspect, Character, Mode, Platform

HERE = Path(__file__).parent
PAGE_SIZE = 12
UPLOAD_BODY = 300_000_000  # bytes: a new video's form with a 10-minute WAV track and pictures
LINK_SECONDS = 6 * 3600  # the player's signed link: a page left open for a while still plays
POLL_MS = 1500
STRIP_FRAMES = 8
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True,
                        lstrip_blocks=True)
PICTURE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}
IMMUTABLE = {"Cache-Control": "private, max-age=31536000, immutable",
             "X-Content-Type-Options": "nosniff"}
# The new-video form's fields, named as the API names them (a refusal names the same field).
NEW_FIELDS = ("prompt", "script", "scenes", "aspect", "style", "language", "cast", "mode",
              "director", "product", "cta", "platform", "length")
CREATIVE = ("mode", "director", "product", "cta", "platform", "length")
UPLOADS = ("track", "lyrics", "product_image")  # files the run reads on this machine
# A card's fields that a refusal of its operation may name.
CARD_FIELDS = ("narration", "lines", "visual_prompt", "start", "end", "media", "take", "after",
               "version")
OPERATION = TypeAdapter(Operation)
router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, error: NotSignedIn):
        if request.method == "GET":
            return RedirectResponse("/", status_code=303)
        return _page(request, "message.html", 401, title="Sign in first",
                     message="You are not signed in (or your key was removed): nothing changed.")

    @app.exception_handler(_NotFound)
    async def not_found(request: Request, error: _NotFound):
        return _page(request, "message.html", 404, title="Not found",
                     message=f"There is no {error} for this key.")

    @app.exception_handler(Forged)
    async def forged(request: Request, error: Forged):
        return _page(request, "message.html", 403, title="Refused",
                     message="This request did not come from a reelflow page (its CSRF token is "
                             "missing or wrong, or another site sent it): nothing changed.")


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(request=request, csrf_field=CSRF_FIELD,
                                                   **context)
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                   "media-src 'self'; frame-ancestors 'none'"})


def _signed(request: Request, counted: bool = True) -> Session:
    """The signed-in key. A page counts against the key's rate as an API request does; the
    pictures and progress polls it makes the browser ask for do not (`counted`)."""
    session = session_of(request)
    if counted:
        count_request(request, session.key_hash)
    return session


async def _form(request: Request, session: Session) -> FormData:
    check_same_origin(request)
    form = await request.form()
    check_csrf(session, form.get(CSRF_FIELD))
    return form


async def _api(request: Request, session: Session, method: str, path: str,
               body: Any = None) -> httpx.Response:
    """The API, in this process, as the signed-in key."""
    async with in_process(request.app, request.app.state.public_url,
                          f"Bearer {session.key}") as client:
        return await client.request(method, path, json=body)


def _refusals(answer: httpx.Response, fields: tuple[str, ...]) -> dict[str, str]:
    """The API's refusal as a message per field of the page's form ("": the rest). The API
    names a field by its path (creative.product, operations.0.trim.start) or an operation
    and its field (edit narration): the first part the form has is the one."""
    document = answer.json()
    found: dict[str, str] = {}
    for detail in document.get("details") or [{"field": "", "message": document["message"]}]:
        parts = re.split(r"[.\s]", str(detail.get("field") or ""))
        found.setdefault(next((part for part in parts if part in fields), ""), detail["message"])
    return found


@router.get("/")
async def home(request: Request, page: int = 1) -> HTMLResponse:
    try:
        session = _signed(request)
    except NotSignedIn:
        return _page(request, "sign_in.html", errors={})
    page = max(1, page)
    client = request.app.state.prefect
    runs = await jobs.listed(client, session.key_hash, None, PAGE_SIZE + 1,
                             (page - 1) * PAGE_SIZE)
    store = request.app.state.settings.store
    rows = [await views.row(client, run, store) for run in runs[:PAGE_SIZE]]
    return _page(request, "videos.html", session=session, rows=rows, page=page,
                 more=len(runs) > PAGE_SIZE)


@router.post("/sign-in")
async def sign_in_with_key(request: Request) -> Response:
    check_same_origin(request)
    key = str((await request.form()).get("key", "")).strip()
    if request.app.state.keys.match(f"Bearer {key}") is None:
        return _page(request, "sign_in.html", 401,
                     errors={"key": "this is not a key this server knows"})
    response = RedirectResponse("/", status_code=303)
    sign_in(response, request, key)
    return response


@router.post("/sign-out")
async def sign_out_of_key(request: Request) -> Response:
    await _form(request, _signed(request))
    response = RedirectResponse("/", status_code=303)
    sign_out(response)
    return response


def _cast(request: Request) -> list[Character]:
    try:
        return list(load_profiles(Character, request.app.state.settings.characters).values())
    except BibleError:  # the server's folders: the form offers no cast, the API says why
        return []


def _new_form(request: Request, session: Session, status: int = 200,
              asked: dict | None = None, errors: dict | None = None) -> HTMLResponse:
    return _page(request, "new.html", status, session=session, asked=asked or {},
                 errors=errors or {}, styles=sorted(styles()),
                 aspects=[aspect.value for aspect in Aspect],
                 directors=[director.value for director in DirectorName],
                 modes=[mode.value for mode in Mode],
                 platforms=[platform.value for platform in Platform], cast=_cast(request))


@router.get("/new")
async def new_video(request: Request) -> HTMLResponse:
    return _new_form(request, _signed(request))


@router.post("/new")
async def make_video(request: Request) -> Response:
    session = _signed(request)
    form = await _form(request, session)
    asked: dict[str, Any] = {name: str(form.get(name, "")).strip() for name in NEW_FIELDS}
    asked["cast"] = form.getlist("cast")
    asked["music"] = form.get("music") == "on"
    upload = form.get("script_file")
    if isinstance(upload, UploadFile) and upload.filename:
        try:
            asked["script"] = (await upload.read()).decode("utf-8").strip()
        except UnicodeDecodeError:
            return _new_form(request, session, 422, asked,
                             {"script": "the file is not UTF-8 text"})
    creative: dict[str, Any] = {name: asked[name] for name in CREATIVE if asked[name]}
    store = open_store(request.app.state.settings.store)
    for name in UPLOADS:
        paths = [await run_in_threadpool(_kept, upload, store) for upload in form.getlist(name)
                 if isinstance(upload, UploadFile) and upload.filename]
        if paths:
            creative[name] = paths if name == "product_image" else paths[0]
    body = {"prompt": asked["prompt"] or None, "script": asked["script"] or None,
            "scenes": asked["scenes"] or 6, "aspect": asked["aspect"] or Aspect.portrait.value,
            "style": asked["style"] or "documentary", "language": asked["language"] or None,
            "cast": asked["cast"] or None, "music": asked["music"], "creative": creative}
    answer = await _api(request, session, "POST", "/jobs", body)
    if answer.status_code != 202:
        return _new_form(request, session, answer.status_code, asked,
                         _refusals(answer, NEW_FIELDS + UPLOADS))
    return RedirectResponse(f"/videos/{answer.json()['id']}", status_code=303)


def _kept(upload: UploadFile, store: ArtifactStore) -> str:
    """An uploaded file kept in the store by its digest: its path on this machine (the API
    checks it as it checks any track or picture a job names)."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "upload"
        with open(copy, "wb") as handle:
            shutil.copyfileobj(upload.file, handle, 1 << 20)
        stored = store.put_file(copy, upload.content_type or "application/octet-stream")
    return str(store.blob_path(stored.digest))


@router.get("/characters/{character}/picture")
async def character_picture(request: Request, character: str) -> Response:
    _signed(request, counted=False)
    profile = next((c for c in _cast(request) if c.id == character), None)
    pictures = [*profile.sprites.values(), *profile.references] if profile else []
    if not pictures:
        return Response(status_code=404)
    return FileResponse(pictures[0].path, headers=IMMUTABLE)


class _NotFound(Exception):
    """Nothing of that name for this key (another key's video is the same: no hint which)."""


async def _shown(request: Request, session: Session, job_id: str) -> views.Published | None:
    """A job of the key (else _NotFound) as published; None while it is not finished."""
    run = await jobs.owned(request.app.state.prefect, job_id, session.key_hash)
    if run is None:
        raise _NotFound(f"video {job_id}")
    return await views.published(request.app.state.prefect, run,
                                 request.app.state.settings.store)


async def _posted(request: Request, job_id: str
                  ) -> tuple[Session, FormData, views.Published | None]:
    """A form posted on a video's page: the key, the form (its CSRF token checked) and the
    video as published."""
    session = _signed(request)
    form = await _form(request, session)
    return session, form, await _shown(request, session, job_id)


async def _video_page(request: Request, session: Session, job_id: str, status: int = 200,
                      errors: dict | None = None, **context: Any) -> HTMLResponse:
    client, settings = request.app.state.prefect, request.app.state.settings
    run = await jobs.owned(client, job_id, session.key_hash)
    if run is None:
        raise _NotFound(f"video {job_id}")
    job = await jobs.document(client, run, video_url="")
    shown = (await views.published(client, run, settings.store)
             if job.status is jobs.Status.finished else None)
    if shown:
        cards = await run_in_threadpool(views.cards, shown, settings.store)
        flagged = await run_in_threadpool(views.flagged, shown, settings.store)
    return _page(request, "video.html", status, session=session, job=job,
                 title=views.title_of(run, shown), shown=shown,
                 cards=cards if shown else [], flagged=flagged if shown else [],
                 names=views.speakers(shown.storyboard) if shown else {},
                 history=views.history_of(shown) if shown else [],
                 take_labels=views.TAKE_LABELS,
                 # Only a render still going shows its steps: no artifacts read for the rest.
                 kinds=[] if jobs.is_over(run) else await views.progress(client, run),
                 poll_ms=POLL_MS,
                 player=links.signed_video_url("", request.app.state.url_secret, job_id,
                                               LINK_SECONDS) if shown else None,
                 errors=errors or {}, **context)


@router.get("/videos/{job_id}")
async def video_page(request: Request, job_id: str) -> HTMLResponse:
    return await _video_page(request, _signed(request), job_id)


@router.get("/videos/{job_id}/progress")
async def video_progress(request: Request, job_id: str) -> JSONResponse:
    session = _signed(request, counted=False)
    client = request.app.state.prefect
    run = await jobs.owned(client, job_id, session.key_hash)
    if run is None:
        raise _NotFound(f"video {job_id}")
    job = await jobs.document(client, run, video_url="")
    kinds = await views.progress(client, run)
    return JSONResponse({
        "status": job.status.value, "progress": job.progress, "over": jobs.is_over(run),
        "error": job.error, "cost_usd": round(sum(kind.cost_usd for kind in kinds), 4),
        "kinds": [kind.model_dump() for kind in kinds]})


@router.get("/videos/{job_id}/media/{digest}")
async def picture(request: Request, job_id: str, digest: str) -> Response:
    """A picture one of the video's versions published: a keyframe, a take, the thumbnail."""
    shown = await _shown(request, _signed(request, counted=False), job_id)
    if shown is None or digest not in shown.pictures():
        raise _NotFound(f"picture {digest} in video {job_id}")
    # A bucket store copies the blob here first: not on the event loop.
    path = await run_in_threadpool(open_store(request.app.state.settings.store).blob_path, digest)
    with open(path, "rb") as handle:
        head = handle.read(4)
    return FileResponse(path, headers=IMMUTABLE, media_type=next(
        (kind for magic, kind in PICTURE_TYPES.items() if head.startswith(magic)),
        "application/octet-stream"))


@router.get("/videos/{job_id}/scenes/{scene_id}/strip.jpg")
async def filmstrip(request: Request, job_id: str, scene_id: str) -> Response:
    """The scene's clip as generated, in frames side by side: what the trim handles lie over."""
    shown = await _shown(request, _signed(request, counted=False), job_id)
    clip = shown.output("clip", scene_id, "clip") if shown else None
    strip = (await run_in_threadpool(_strip, clip, request.app.state.settings.store)
             if clip else None)
    if strip is None:
        raise _NotFound(f"clip of {scene_id} in video {job_id}")
    return Response(strip, media_type="image/jpeg", headers=IMMUTABLE)


def _strip(digest: str, store_location: str) -> bytes | None:
    """STRIP_FRAMES frames of a clip, evenly spread, side by side in one JPEG."""
    clip = open_store(store_location).blob_path(digest)
    length = probe(clip).duration
    if length <= 0:
        return None
    with tempfile.TemporaryDirectory() as folder:
        strip = Path(folder) / "strip.jpg"
        run_ffmpeg(["-i", str(clip), "-vf", f"fps={STRIP_FRAMES / length:.4f},scale=-2:90,"
                    f"tile={STRIP_FRAMES}x1", "-frames:v", "1", str(strip)],
                   what="draw a clip's frames side by side")
        return strip.read_bytes()


def _operation(form: FormData, shown: views.Published) -> tuple[dict, str]:
    """The API's edit request a card's form asks for, and a refusal that needs no API ("" when
    there is none)."""
    op, scene_id = str(form.get("op", "")), str(form.get("scene", ""))
    ids = [scene.id for scene in shown.storyboard.ordered_scenes()]
    scene = next((s for s in shown.storyboard.scenes if s.id == scene_id), None)
    if op == "revert":
        return {"revert": {"version": form.get("version")}}, ""
    if op == "add":
        return {"operations": [{"op": "add", "after": scene_id or None,
                                "narration": str(form.get("narration", "")).strip(),
                                "visual_prompt": str(form.get("visual_prompt", "")).strip()
                                or None}]}, ""
    if scene is None:
        return {}, f"this video has no scene {scene_id!r}"
    if op == "edit":
        change = {"op": "edit", "scene": scene_id}
        picture = str(form.get("visual_prompt", "")).strip()
        if views.is_dialogue(scene):  # a field per line
            lines = [{"speaker": speaker, "text": str(text).strip()} for speaker, text
                     in zip(form.getlist("speaker"), form.getlist("line"))]
            if lines != [line.model_dump() for line in scene.lines]:
                change["lines"] = lines
        elif str(form.get("narration", "")).strip() != scene.narration:
            change["narration"] = str(form.get("narration", "")).strip()
        if picture != scene.visual_prompt:
            change["visual_prompt"] = picture
        return {"operations": [change]}, "" if len(change) > 2 else "nothing changed"
    if op in ("up", "down"):
        at = ids.index(scene_id)
        if (op == "up" and at == 0) or (op == "down" and at == len(ids) - 1):
            return {}, f"it is already the {'first' if op == 'up' else 'last'} scene"
        # Up: after the scene two before it (or first); down: after the next one.
        after = (ids[at - 2] if at >= 2 else None) if op == "up" else ids[at + 1]
        return {"operations": [{"op": "move", "scene": scene_id, "after": after}]}, ""
    fields = {"move": ("after",), "trim": ("start", "end"), "retake": ("media",),
              "use": ("media", "take"), "delete": ()}
    if op not in fields:
        return {}, f"no operation {op!r}"
    given = {name: form.getlist(name) if name == "media" and op == "retake"
             else form.get(name) or None for name in fields[op]}
    return {"operations": [{"op": op, "scene": scene_id, **given}]}, ""


@router.post("/videos/{job_id}/changes")
async def change(request: Request, job_id: str) -> Response:
    """A card's change: shown first as the API's dry run; run once it is confirmed."""
    session, form, shown = await _posted(request, job_id)
    # What was typed, given back to the form it came from if the change is refused.
    kept = {name: form.get(name) for name in form if name != CSRF_FIELD}
    kept["lines"] = form.getlist("line")
    where = str(form.get("scene", ""))
    if shown is None:
        return await _video_page(request, session, job_id, 409, errors={
            "": {"": "this video has not finished: there is nothing to change yet"}})
    asked, refused = _operation(form, shown)
    if refused:
        return await _video_page(request, session, job_id, 422, kept=kept,
                                 errors={where: {"": refused}})
    confirmed = form.get("confirm") == "yes"
    answer = await _api(request, session, "POST", f"/jobs/{job_id}/edits",
                        {**asked, "dry_run": not confirmed})
    if answer.status_code >= 400:
        fields = () if form.get("op") == "add" else CARD_FIELDS  # not the edit form's fields
        return await _video_page(request, session, job_id, answer.status_code, kept=kept,
                                 errors={where: _refusals(answer, fields)})
    if confirmed:
        return RedirectResponse(f"/videos/{answer.json()['id']}", status_code=303)
    return await _video_page(request, session, job_id, kept=kept, pending={
        "fields": [(name, value) for name, value in form.multi_items()
                   if name != CSRF_FIELD and isinstance(value, str)],
        "preview": answer.json(), "says": _said(asked)})


def _said(asked: dict) -> str:
    """The change in the words the video's history will keep (the API took it: it is valid)."""
    if "revert" in asked:
        return f"revert to version {asked['revert']['version']}"
    return OPERATION.validate_python(asked["operations"][0]).describe()


@router.post("/videos/{job_id}/approve")
async def approve_shot(request: Request, job_id: str) -> Response:
    """A flagged shot kept as it is: later renders use it without flagging it."""
    session, form, shown = await _posted(request, job_id)
    shot = str(form.get("shot", ""))
    store = request.app.state.settings.store
    flagged = await run_in_threadpool(views.flagged, shown, store) if shown else []
    if not any(row["id"] == shot for row in flagged):
        return await _video_page(request, session, job_id, 422, errors={
            "": {"": f"{shot!r} is not a flagged shot of this video"}})
    await run_in_threadpool(approve, open_store(store), shot_digest(shown.manifest, shot))
    return RedirectResponse(f"/videos/{job_id}#review", status_code=303)
