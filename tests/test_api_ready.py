"""The API's readiness names the store it cannot write to, a folder or a bucket (in-process:
the app on a real Prefect server, the store on the GCS fake)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from starlette.testclient import TestClient

from config.settings import load_settings
from flows.api.app import create_app
from flows.api.keys import Keys, new_key
from tests.fakes.gcs import new_bucket, storage_emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with storage_emulator() as url:
        yield url


def _ready(store: str, prefect_api_url: str, monkeypatch) -> tuple[int, str]:
    app = create_app(load_settings(None, store=store), Keys([new_key()[1]]), "http://test")
    # The app runs in TestClient's thread: Prefect's settings context may not reach it, the
    # environment does.
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    with temporary_settings({PREFECT_API_URL: prefect_api_url}), TestClient(app) as client:
        answer = client.get("/readyz")
    return answer.status_code, answer.json().get("message", answer.json().get("status"))


def test_a_bucket_store_is_ready_while_it_takes_artifacts(emulator, monkeypatch,
                                                           prefect_api_url):
    bucket = new_bucket(emulator, monkeypatch, "reelflow-ready")
    store = f"gs://{bucket.name}/store"
    assert _ready(store, prefect_api_url, monkeypatch) == (200, "ready")
    bucket.delete(force=True)
    status, message = _ready(store, prefect_api_url, monkeypatch)
    assert status == 503 and message == f"not ready: the store {store} takes no artifact"


def test_a_folder_store_that_cannot_be_made_or_a_prefect_that_is_gone_is_not_ready(
        tmp_path, prefect_api_url, monkeypatch):
    (tmp_path / "file").write_text("a file where the store's folder would be")
    assert _ready(str(tmp_path / "store"), prefect_api_url, monkeypatch) == (200, "ready")
    status, message = _ready(str(tmp_path / "file" / "store"), prefect_api_url, monkeypatch)
    assert status == 503 and message.endswith("/file/store takes no artifact")
    gone = "http://127.0.0.1:9/api"  # nothing listens there
    assert _ready(str(tmp_path / "store"), gone, monkeypatch) == (
        503, "not ready: the Prefect API does not answer")
