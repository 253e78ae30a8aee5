"""Provider keys never leave the process: with every key set to a recognisable canary, a cloud
render and its failures leave no canary in a file, a published object, an exception, a log
record (local or in Prefect), a flow-run parameter, a task run, or a cache key.
"""

from __future__ import annotations

import json
import logging
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterStartTime,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

from cache.store import ArtifactStore
from flows.video import make_video
from tests.fakes.elevenlabs import TTS_PATH
from tests.fakes.google import GENERATE, PREDICT
from tests.fakes.replicate import CREATE_PATH
from tests.fakes.server import Response
from tests.test_cloud_render import BUCKET, CANARIES, cloud  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")

KEYS = {**CANARIES, "OPENAI_API_KEY": "canary-openai-0004"}
# Veo authenticates with an OAuth access token, not one of the keys: it is a credential too.
VERTEX_TOKEN = "canary-vertex-token-0005"
SECRETS = [*KEYS.values(), VERTEX_TOKEN]
LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "httpx", "httpcore",
           "urllib3", "google", "google_genai", "replicate", "elevenlabs")


@pytest.fixture
def keys(cloud, monkeypatch: pytest.MonkeyPatch):  # noqa: F811 (the imported fixture)
    """The cloud profile with every provider key a canary, and a canary Vertex access token."""
    monkeypatch.setenv("OPENAI_API_KEY", KEYS["OPENAI_API_KEY"])
    cloud["google"].fail("POST", r"^/token$", [Response.json(
        {"access_token": VERTEX_TOKEN, "expires_in": 3600, "token_type": "Bearer"})] * 20)
    return cloud


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{self.format(record)} {record.__dict__!r}")


@contextmanager
def every_log_record():
    """Every record any of LOGGERS sees, at DEBUG, formatted with its traceback."""
    handler = Captured()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)


def where(data: bytes | str) -> list[str]:
    """The secrets found in `data`."""
    raw = data.encode(errors="replace") if isinstance(data, str) else data
    return [secret for secret in SECRETS if secret.encode() in raw]


def files_holding_secrets(*roots: Path) -> list[str]:
    return [f"file {path}: {found}" for root in roots if root.exists()
            for path in sorted(root.rglob("*")) if path.is_file()
            if (found := where(path.read_bytes()))]


def objects_holding_secrets() -> list[str]:
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    return [f"gs://{BUCKET}/{blob.name}: {found}" for blob in client.list_blobs(BUCKET)
            if (found := where(blob.download_as_bytes()))]


def cache_keys_holding_secrets(store_root: Path) -> list[str]:
    if not store_root.exists():
        return []
    store = ArtifactStore(store_root)
    try:
        return [f"index record {record.key}: {found}" for record in store.records()
                if (found := where(record.key + json.dumps(record.parts, default=str)))]
    finally:
        store.close()


def prefect_holding_secrets(since: datetime) -> list[str]:
    """Flow runs started since `since`: parameters, states, their task runs and their logs."""
    APILogHandler().flush()
    leaks: list[str] = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            start_time=FlowRunFilterStartTime(after_=since)))
        assert runs, "the render made no flow run"
        ids = [run.id for run in runs]
        for run in runs:
            found = where(json.dumps(run.parameters, default=str) + run.model_dump_json())
            leaks += [f"flow run {run.name} parameters/state: {found}"] if found else []
            states = "".join(state.model_dump_json()
                             for state in client.read_flow_run_states(run.id))
            leaks += [f"flow run {run.name} states: {found}"] if (found := where(states)) else []
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        assert tasks, "the render made no task run"
        for task in tasks:
            found = where(json.dumps(task.task_inputs, default=str) + task.model_dump_json())
            leaks += [f"task run {task.name} inputs/state: {found}"] if found else []
        offset, logs = 0, []
        while page := client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
                any_=ids)), limit=200, offset=offset):
            logs += page
            offset += len(page)
        leaks += [f"Prefect log {log.name}: {found}" for log in logs
                  if (found := where(log.model_dump_json()))]
    return leaks


def exception_holding_secrets(error: BaseException) -> list[str]:
    chain, seen = [], error  # the chain as a traceback shows it (`from None` hides context)
    while seen is not None and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
    text = "".join(traceback.format_exception(error)) + "".join(
        f"{one}\n{one!r}\n{one.args!r}\n" for one in chain)
    return [f"exception {type(error).__name__}: {found}"] if (found := where(text)) else []


def leaks_after(since: datetime, tmp_path: Path, workspace: dict[str, Path], log_lines: list[str],
                error: BaseException | None = None) -> list[str]:
    return [
        *files_holding_secrets(tmp_path, workspace["store"], workspace["out"]),
        *objects_holding_secrets(),
        *cache_keys_holding_secrets(workspace["store"]),
        *prefect_holding_secrets(since),
        *([f"log record: {line[:300]}" for line in log_lines if where(line)]),
        *(exception_holding_secrets(error) if error is not None else []),
    ]


def test_a_cloud_render_leaves_no_key_in_files_objects_logs_runs_or_cache_keys(
        keys, tmp_path, workspace):
    since = datetime.now(timezone.utc)
    with every_log_record() as lines:
        summary = make_video(topic="tide pools", scenes=2)

    assert summary.url and list(storage.Client(
        project="test", credentials=AnonymousCredentials()).list_blobs(BUCKET))
    assert any(r.headers.get("xi-api-key") == KEYS["ELEVENLABS_API_KEY"]
               for r in keys["eleven"].server.calls("POST"))  # the canary really was used
    assert lines, "the log capture saw nothing"
    leaks = leaks_after(since, tmp_path, workspace, lines)
    assert not leaks, "\n".join(leaks)


def test_an_elevenlabs_401_that_echoes_the_key_fails_the_run_without_repeating_it(
        keys, tmp_path, workspace, monkeypatch):
    monkeypatch.setenv("REELFLOW_SPEECH", "elevenlabs")  # no eSpeak to fall back to
    key = KEYS["ELEVENLABS_API_KEY"]
    keys["eleven"].server.fail("POST", TTS_PATH, [Response.json(
        {"detail": {"status": "invalid_api_key", "message": f"Invalid API key: '{key}'"}},
        status=401)] * 10)
    since = datetime.now(timezone.utc)

    with every_log_record() as lines, pytest.raises(Exception) as failed:
        make_video(topic="tide pools", scenes=2)

    assert "401" in str(failed.value) and "elevenlabs" in str(failed.value)
    leaks = leaks_after(since, tmp_path, workspace, lines, failed.value)
    assert not leaks, "\n".join(leaks)


def test_a_veo_refusal_and_a_replicate_401_that_echoes_the_token_fall_back_without_a_key(
        keys, tmp_path, workspace):
    keys["google"].fail("POST", PREDICT, [Response.json({"error": {
        "code": 403, "status": "PERMISSION_DENIED",
        "message": "Permission 'aiplatform.endpoints.predict' denied on resource"}},
        status=403)] * 10)
    token = KEYS["REPLICATE_API_TOKEN"]
    keys["replicate"].server.fail("POST", CREATE_PATH, [Response.json(
        {"title": "Unauthenticated", "detail": f"Invalid token {token}", "status": 401},
        status=401)] * 10)
    since = datetime.now(timezone.utc)

    with every_log_record() as lines:
        summary = make_video(topic="tide pools", scenes=2)

    clips = [node for node in json.loads(summary.manifest.read_text())["nodes"]
             if node["kind"] == "clip"]
    assert {clip["provider"] for clip in clips} == {"kenburns"}
    assert all(len(clip["fallbacks"]) == 2 for clip in clips)
    assert {r.headers.get("authorization") for r in keys["google"].calls("POST", PREDICT)} == {
        f"Bearer {VERTEX_TOKEN}"}  # the canary token really was used
    leaks = leaks_after(since, tmp_path, workspace, lines)
    assert not leaks, "\n".join(leaks)



@pytest.mark.parametrize("route, echoed", [(GENERATE, "GEMINI_API_KEY"), (PREDICT, "vertex")])
def test_a_google_error_that_quotes_the_credential_never_repeats_it(
        keys, tmp_path, workspace, route, echoed):
    secret = KEYS[echoed] if echoed in KEYS else VERTEX_TOKEN
    keys["google"].fail("POST", route, [Response.json(
        {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                   "message": f"API key not valid: {secret}"}}, status=400)] * 10)
    since = datetime.now(timezone.utc)

    with every_log_record() as lines:
        try:
            make_video(topic="tide pools", scenes=2)
            error = None
        except Exception as raised:  # the plan fails; a Veo refusal falls back instead
            error = raised

    leaks = leaks_after(since, tmp_path, workspace, lines, error)
    assert not leaks, "\n".join(leaks)
