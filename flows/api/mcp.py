"""The API's operations as tools of a Model Context Protocol server, for agents.

Each tool is one or two calls of the HTTP API, so keys, rate limits, ownership and refusals
are the API's own and a tool's arguments are the API's request models. Under `reelflow api`
the server answers at /mcp with the caller's key passed on; `reelflow mcp` serves it over
stdio to a local agent, against a running API (REELFLOW_API_URL, REELFLOW_API_KEY)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import httpx
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from flows.api.jobs import EditRequest, JobRequest, SceneChange

# A client of the API for one tool call: the caller's key in its headers.
ClientFor = Callable[[Context], httpx.AsyncClient]
INSTRUCTIONS = (
    "Make short videos: make_video starts a job and returns its id at once; poll job_status "
    "until it is finished (it then gives a link to the video), failed or canceled. edit_scene "
    "makes a new job that changes one scene of a finished one and regenerates only that scene; "
    "shape_video adds, deletes, moves, trims or retakes scenes, or reverts to a version, and "
    "with dry_run says what that would generate and cost.")


def mcp_server(client_for: ClientFor) -> MCPServer:
    server = MCPServer("reelflow", instructions=INSTRUCTIONS, log_level="WARNING")

    async def call(ctx: Context, method: str, path: str, body: Any = None) -> Any:
        async with client_for(ctx) as client:
            try:
                response = await client.request(method, path, json=body)
            except httpx.HTTPError as error:
                raise ToolError(f"the reelflow API did not answer: {error}") from None
        if response.status_code >= 400:
            raise ToolError(_message(response))
        return response.json()

    @server.tool(description="Start a video from a prompt or a script (or render a "
                             "storyboard). Returns the job's id at once; the video takes minutes.")
    @_arguments(JobRequest)
    async def make_video(ctx: Context, **request: Any) -> dict[str, Any]:
        given = {name: value for name, value in request.items() if value is not None}
        return await call(ctx, "POST", "/jobs", to_jsonable_python(given))

    @server.tool(description="A job's status, progress (0-100), cost and, once finished, a "
                             "link to its video that needs no key.")
    async def job_status(ctx: Context, job_id: str) -> dict[str, Any]:
        job = await call(ctx, "GET", f"/jobs/{job_id}")
        if job["status"] == "finished":
            job["video_url"] = (await call(ctx, "GET", f"/jobs/{job_id}/video-url"))["url"]
        return job

    @server.tool(description="Cancel a job that is queued or running: nothing half-made is "
                             "published.")
    async def cancel_job(ctx: Context, job_id: str) -> dict[str, Any]:
        return await call(ctx, "POST", f"/jobs/{job_id}/cancel")

    @server.tool(description="Change one scene of a finished job (its narration, picture or "
                             "on-screen text): a new job that regenerates only that scene.")
    @_arguments(SceneChange, "job_id", "scene_id")
    async def edit_scene(ctx: Context, job_id: str, scene_id: str, **change: Any
                         ) -> dict[str, Any]:
        given = {name: value for name, value in change.items() if value is not None}
        return await call(ctx, "PATCH", f"/jobs/{job_id}/scenes/{scene_id}", given)

    @server.tool(description="Make the next version of a finished job's video: scene "
                             "operations in order, or a revert; a new job that generates only "
                             "what they touch. With dry_run: what it would generate and cost.")
    @_arguments(EditRequest, "job_id")
    async def shape_video(ctx: Context, job_id: str, **edits: Any) -> dict[str, Any]:
        given = {name: value for name, value in edits.items() if value is not None}
        return await call(ctx, "POST", f"/jobs/{job_id}/edits", to_jsonable_python(given))

    @server.tool(description="The visual styles a video can have, with their colours.")
    async def list_styles(ctx: Context) -> list[dict[str, Any]]:
        return await call(ctx, "GET", "/styles")

    @server.tool(description="The characters a video's cast can name, as they look and speak.")
    async def list_characters(ctx: Context) -> list[dict[str, Any]]:
        return await call(ctx, "GET", "/characters")

    return server


def _arguments(model: type[BaseModel], *leading: str):
    """A tool whose arguments are `leading` (strings) then `model`'s fields, taken as **kwargs:
    the schema an agent sees is the API's own model, defined once."""
    def decorate(tool):
        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        annotation=Context)]
        parameters += [inspect.Parameter(name, keyword, annotation=str) for name in leading]
        for name, field in model.model_fields.items():
            annotation = Annotated[(field.annotation, *field.metadata,
                                    Field(description=field.description))]
            default = inspect.Parameter.empty if field.is_required() else field.default
            parameters.append(inspect.Parameter(name, keyword, default=default,
                                                annotation=annotation))
        tool.__signature__ = inspect.Signature(parameters, return_annotation=dict[str, Any])
        tool.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return tool
    return decorate


def _message(response: httpx.Response) -> str:
    """The API's error document as one line."""
    try:
        document = response.json()
        return f"{document['message']} ({document['error']}, HTTP {response.status_code})"
    except (ValueError, KeyError, TypeError):
        return f"the reelflow API answered HTTP {response.status_code}"
