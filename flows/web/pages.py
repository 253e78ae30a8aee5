"""The web page `reelflow api` serves at /: sign in with a key, the key's videos, a form for a
new one, and a video's page with its player, live progress and scene cards to shape it.

Pages read jobs as the API does (flows/api/jobs.py, same key, same ownership). Every change
(a new video, a scene operation, a revert) is a request to the API itself, in process, with
the signed-in key: what the API refuses, the page shows beside the field it names, and each
change is first shown as the API's dry run (what it generates and costs) before it runs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cache import open_store
from config.bible import BibleError, load_profiles
from config.catalog import styles
from flows.api import jobs, links
from flows.choices import DirectorName
from flows.web import views
from flows.web.session import (CSRF_FIELD, Forged, NotSignedIn, Session, check_csrf,
                               session_of, sign_in, sign_out)
from tasks.ffmpeg import ffmpeg_exe
from tasks.review import approve
from tasks.storyboard import Aspect, Character, Mode, Platform

HERE = Path(__file__).parent
PAGE_SIZE = 12
LINK_SECONDS = 6 * 3600  # the player's signed link: a page left open for a while still plays
POLL_MS = 1500
STRIP_FRAMES = 8
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True,
                        lstrip_blocks=True)
MEDIA_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "audio/wav"}
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

    @app.exception_handler(Forged)
    async def forged(request: Request, error: Forged):
        return _page(request, "message.html", 403, title="Refused",
                     message="This request did not come from a reelflow page (its CSRF token is "
                             "missing or wrong): nothing changed.")


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(request=request, csrf_field=CSRF_FIELD,
                                                   **context)
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                   "media-src 'self'; frame-ancestors 'none'"})


def _signed(request: Request) -> Session:
    """The signed-in key, counted against its rate as an API request is."""
    from flows.api.app import ApiError  # the API's own 429

    session = session_of(request)
    wait = request.app.state.limits.retry_after(session.key_hash)
    if wait is not None:
        raise ApiError(429, "rate_limited", "too many requests for this key a minute",
                       retryable=True, headers={"Retry-After": str(wait)})
    return session


async def _form(request: Request, session: Session) -> dict[str, Any]:
    form = await request.form()
    check_csrf(session, form.get(CSRF_FIELD))
    return form


async def _api(request: Request, session: Session, method: str, path: str,
               body: Any = None) -> httpx.Response:
    """The API, in this process, as the signed-in key."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=request.app),
                                 base_url="http://reelflow",
                                 headers={"Authorization": f"Bearer {session.key}"}) as client:
        return await client.request(method, path, json=body, timeout=120)


def _refusals(answer: httpx.Response, renamed: dict[str, str] | None = None) -> dict[str, str]:
    """The API's refusal as field → message (the page's field names); "" for the rest."""
    document = answer.json()
    found: dict[str, str] = {}
    for detail in document.get("details") or [{"field": "", "message": document["message"]}]:
        field = str(detail.get("field", ""))
        for name, shown in (renamed or {}).items():
            if field == name or field.startswith(name + ".") or field.endswith(" " + name):
                field = shown
                break
        else:
            field = ""
        found.setdefault(field, detail["message"])
    return found


@router.get("/")
async def home(request: Request, page: int = 1) -> HTMLResponse:
    try:
        session = _signed(request)
    except NotSignedIn:
        return _page(request, "sign_in.html")
    page = max(1, page)
    client = request.app.state.prefect
    runs = await jobs.listed(client, session.key_hash, None, PAGE_SIZE + 1,
                             (page - 1) * PAGE_SIZE)
    store = request.app.state.settings.store
    rows = [await views.row(client, run, store, "") for run in runs[:PAGE_SIZE]]
    return _page(request, "videos.html", session=session, rows=rows, page=page,
                 more=len(runs) > PAGE_SIZE)


@router.post("/sign-in")
async def sign_in_with_key(request: Request) -> Response:
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


def _choices(request: Request) -> dict[str, Any]:
    try:
        cast = list(load_profiles(Character, request.app.state.settings.characters).values())
    except BibleError:
        cast = []
    return {"styles": sorted(styles()), "aspects": [aspect.value for aspect in Aspect],
            "directors": [director.value for director in DirectorName],
            "modes": [Mode.explainer.value, Mode.ad.value],
            "platforms": [platform.value for platform in Platform], "cast": cast}


@router.get("/new")
async def new_video(request: Request) -> HTMLResponse:
    session = _signed(request)
    return _page(request, "new.html", session=session, asked={}, errors={}, **_choices(request))


# The API's fields as the new-video form names them.
NEW_FIELDS = {"prompt": "topic", "script": "script", "scenes": "scenes", "aspect": "aspect",
              "style": "style", "language": "language", "cast": "cast",
              "creative.mode": "mode", "creative.director": "director",
              "creative.product": "product", "creative.cta": "cta",
              "creative.platform": "platform", "creative.length": "length"}


@router.post("/new")
async def make_video(request: Request) -> Response:
    session = _signed(request)
    form = await _form(request, session)
    asked = {name: str(form.get(name, "")).strip() for name in NEW_FIELDS.values()}
    asked["cast"] = form.getlist("cast")
    asked["music"] = form.get("music") == "on"
    upload = form.get("script_file")
    if upload is not None and getattr(upload, "filename", ""):
        try:
            asked["script"] = (await upload.read()).decode("utf-8").strip()
        except UnicodeDecodeError:
            return _page(request, "new.html", 422, session=session, asked=asked,
                         errors={"script": "the file is not UTF-8 text"}, **_choices(request))
    creative = {name.split(".", 1)[1]: asked[field] for name, field in NEW_FIELDS.items()
                if name.startswith("creative.") and asked[field]}
    body = {"prompt": asked["topic"] or None, "script": asked["script"] or None,
            "scenes": asked["scenes"] or 6, "aspect": asked["aspect"] or Aspect.portrait.value,
            "style": asked["style"] or "documentary", "language": asked["language"] or None,
            "cast": asked["cast"] or None, "music": asked["music"], "creative": creative}
    answer = await _api(request, session, "POST", "/jobs", body)
    if answer.status_code != 202:
        return _page(request, "new.html", answer.status_code, session=session, asked=asked,
                     errors=_refusals(answer, NEW_FIELDS), **_choices(request))
    return RedirectResponse(f"/videos/{answer.json()['id']}", status_code=303)


@router.get("/characters/{character}/picture")
async def character_picture(request: Request, character: str) -> FileResponse:
    _signed(request)
    profile = next((c for c in _choices(request)["cast"] if c.id == character), None)
    pictures = [*profile.sprites.values(), *profile.references] if profile else []
    if not pictures:
        return Response(status_code=404)
    return FileResponse(pictures[0].path)


async def _owned(request: Request, session: Session, job_id: str):
    run = await jobs.owned(request.app.state.prefect, job_id, session.key_hash)
    if run is None:
        raise _NotFound(job_id)
    return run


class _NotFound(Exception):
    pass


async def _video_page(request: Request, session: Session, job_id: str, status: int = 200,
                      **context: Any) -> HTMLResponse:
    try:
        run = await _owned(request, session, job_id)
    except _NotFound:
        return _page(request, "message.html", 404, session=session, title="No such video",
                     message=f"There is no video {job_id} for this key.")
    client, settings = request.app.state.prefect, request.app.state.settings
    job = await jobs.document(client, run, "")
    shown = await views.published(client, run, settings.store) if job.status.value == "finished" \
        else None
    return _page(request, "video.html", status, session=session, job=job,
                 title=views.title_of(run, shown), shown=shown,
                 cards=views.cards(shown, settings.store) if shown else [],
                 names=views.speakers(shown.storyboard) if shown else {},
                 history=views.history_of(shown) if shown else [],
                 flagged=views.flagged(shown, settings.store) if shown else [],
                 kinds=await views.progress(client, run), poll_ms=POLL_MS,
                 player=links.signed_video_url("", request.app.state.url_secret, job_id,
                                               LINK_SECONDS) if shown else None,
                 errors=context.pop("errors", {}), **context)


@router.get("/videos/{job_id}")
async def video_page(request: Request, job_id: str) -> HTMLResponse:
    return await _video_page(request, _signed(request), job_id)


@router.get("/videos/{job_id}/progress")
async def video_progress(request: Request, job_id: str) -> JSONResponse:
    session = _signed(request)
    try:
        run = await _owned(request, session, job_id)
    except _NotFound:
        return JSONResponse({"error": "not_found"}, status_code=404)
    client = request.app.state.prefect
    job = await jobs.document(client, run, "")
    kinds = await views.progress(client, run)
    return JSONResponse({
        "status": job.status.value, "progress": job.progress, "over": jobs.is_over(run),
        "error": job.error, "cost_usd": round(sum(kind.cost_usd for kind in kinds), 4),
        "kinds": [kind.model_dump() for kind in kinds]})


async def _shown(request: Request, session: Session, job_id: str) -> views.Published | None:
    run = await _owned(request, session, job_id)
    return await views.published(request.app.state.prefect, run,
                                 request.app.state.settings.store)


@router.get("/videos/{job_id}/media/{digest}")
async def media(request: Request, job_id: str, digest: str) -> Response:
    """A blob one of the video's versions published: a keyframe, a take, the thumbnail."""
    try:
        shown = await _shown(request, _signed(request), job_id)
    except _NotFound:
        shown = None
    if shown is None or digest not in shown.digests():
        return Response(status_code=404)
    path = open_store(request.app.state.settings.store).blob_path(digest)
    with open(path, "rb") as handle:
        head = handle.read(4)
    media_type = next((kind for magic, kind in MEDIA_TYPES.items() if head.startswith(magic)),
                      "application/octet-stream")
    return FileResponse(path, media_type=media_type,
                        headers={"Cache-Control": "private, max-age=31536000, immutable"})


@router.get("/videos/{job_id}/scenes/{scene_id}/strip.jpg")
async def filmstrip(request: Request, job_id: str, scene_id: str) -> Response:
    """The scene's clip as generated, in frames side by side: what the trim handles lie over."""
    try:
        shown = await _shown(request, _signed(request), job_id)
    except _NotFound:
        shown = None
    clip = shown.output("clip", scene_id, "clip") if shown else None
    card = next((c for c in views.cards(shown, request.app.state.settings.store)
                 if c.scene.id == scene_id), None) if clip else None
    if card is None or not card.clip_seconds:
        return Response(status_code=404)
    path = open_store(request.app.state.settings.store).blob_path(clip)
    with tempfile.TemporaryDirectory() as folder:
        strip = Path(folder) / "strip.jpg"
        rate = STRIP_FRAMES / card.clip_seconds
        subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-vf",
                        f"fps={rate:.4f},scale=-2:90,tile={STRIP_FRAMES}x1", "-frames:v", "1",
                        "-y", str(strip)], check=True, timeout=60)
        return Response(strip.read_bytes(), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=31536000, immutable"})


def _operation(form, shown: views.Published) -> tuple[dict | None, dict | None, str]:
    """The scene operation (or revert) a card's form asks for, the field it concerns, and a
    refusal that needs no API ("" when there is none)."""
    op, scene_id = str(form.get("op", "")), str(form.get("scene", ""))
    ids = [scene.id for scene in shown.storyboard.ordered_scenes()]
    scene = next((s for s in shown.storyboard.scenes if s.id == scene_id), None)
    if op == "revert":
        return None, {"version": form.get("version")}, ""
    if op == "edit" and scene:
        change = {"op": "edit", "scene": scene_id}
        picture = str(form.get("visual_prompt", "")).strip()
        if views.is_dialogue(scene):  # each line has its own field, its speaker kept
            lines = [{"speaker": speaker, "text": str(text).strip()} for speaker, text
                     in zip(form.getlist("speaker"), form.getlist("line"))]
            if lines != [line.model_dump() for line in scene.lines]:
                change["lines"] = lines
        elif str(form.get("narration", "")).strip() != scene.narration:
            change["narration"] = str(form.get("narration", "")).strip()
        if picture != scene.visual_prompt:
            change["visual_prompt"] = picture
        return change, None, "" if len(change) > 2 else "nothing changed"
    if op in ("up", "down") and scene_id in ids:
        at = ids.index(scene_id)
        if (op == "up" and at == 0) or (op == "down" and at == len(ids) - 1):
            return None, None, f"it is already the {'first' if op == 'up' else 'last'} scene"
        after = (ids[at - 2] if at >= 2 else None) if op == "up" else ids[at + 1]
        return {"op": "move", "scene": scene_id, "after": after}, None, ""
    if op == "move":
        return {"op": "move", "scene": scene_id, "after": form.get("after") or None}, None, ""
    if op == "trim":
        return {"op": "trim", "scene": scene_id, "start": form.get("start"),
                "end": form.get("end")}, None, ""
    if op == "retake":
        return {"op": "retake", "scene": scene_id, "media": form.getlist("media")}, None, ""
    if op == "use":
        return {"op": "use", "scene": scene_id, "media": form.get("media"),
                "take": form.get("take")}, None, ""
    if op == "delete":
        return {"op": "delete", "scene": scene_id}, None, ""
    if op == "add":
        return {"op": "add", "after": scene_id or None,
                "narration": str(form.get("narration", "")).strip(),
                "visual_prompt": str(form.get("visual_prompt", "")).strip() or None}, None, ""
    return None, None, f"no operation {op!r} on scene {scene_id!r}"


# The API's refusals of an operation, by the word its message names, as the card's fields.
CHANGE_FIELDS = {"narration": "narration", "lines": "lines", "visual_prompt": "visual_prompt", "start": "start",
                 "end": "end", "take": "take", "media": "media", "after": "after",
                 "version": "version", "scene": "scene"}


@router.post("/videos/{job_id}/changes")
async def change(request: Request, job_id: str) -> Response:
    """A card's change: shown first as the API's dry run; run once it is confirmed."""
    session = _signed(request)
    form = await _form(request, session)
    try:
        shown = await _shown(request, session, job_id)
    except _NotFound:
        return await _video_page(request, session, job_id)
    kept = {name: form.get(name) for name in form if name != CSRF_FIELD}
    kept["media"], kept["lines"] = form.getlist("media"), form.getlist("line")
    scene_id = str(form.get("scene", ""))
    if shown is None:
        return await _video_page(request, session, job_id, 409, errors={
            scene_id: {"": "this video has not finished: there is nothing to change yet"}})
    operation, revert, refused = _operation(form, shown)
    if refused:
        field = "narration" if operation and operation["op"] == "edit" else ""
        return await _video_page(request, session, job_id, 422, kept=kept,
                                 errors={scene_id: {field: refused}})
    body = {"operations": [operation]} if operation else {"revert": revert}
    confirmed = form.get("confirm") == "yes"
    answer = await _api(request, session, "POST", f"/jobs/{job_id}/edits",
                        {**body, "dry_run": not confirmed})
    if answer.status_code >= 400:
        return await _video_page(request, session, job_id, answer.status_code, kept=kept,
                                 errors={scene_id: _refusals(answer, CHANGE_FIELDS)})
    if confirmed:
        return RedirectResponse(f"/videos/{answer.json()['id']}", status_code=303)
    return await _video_page(request, session, job_id, kept=kept, pending={
        "fields": [(name, value) for name, value in form.multi_items()
                   if name != CSRF_FIELD and isinstance(value, str)],
        "scene": scene_id, "preview": answer.json(), "says": _said(operation, revert)})


def _said(operation: dict | None, revert: dict | None) -> str:
    if revert:
        return f"Go back to version {revert['version']}"
    words = {"edit": "Change the words of", "trim": "Trim", "retake": "Make another take of",
             "use": "Use an earlier take of", "move": "Move", "delete": "Delete",
             "add": "Add a scene after"}
    return f"{words[operation['op']]} {operation.get('scene') or operation.get('after') or ''}"


@router.post("/videos/{job_id}/approve")
async def approve_shot(request: Request, job_id: str) -> Response:
    """A flagged shot kept as it is: later renders use it without flagging it."""
    session = _signed(request)
    form = await _form(request, session)
    try:
        shown = await _shown(request, session, job_id)
    except _NotFound:
        return await _video_page(request, session, job_id)
    shot = str(form.get("shot", ""))
    flagged = views.flagged(shown, request.app.state.settings.store) if shown else []
    node = next((node for node in shown.manifest["nodes"] if node["id"] == shot), None) \
        if any(row["id"] == shot for row in flagged) else None
    if node is None:
        return await _video_page(request, session, job_id, 422, errors={
            "": {"": f"{shot!r} is not a flagged shot of this video"}})
    approve(open_store(request.app.state.settings.store), node["outputs"][node["kind"]])
    return RedirectResponse(f"/videos/{job_id}#review", status_code=303)

