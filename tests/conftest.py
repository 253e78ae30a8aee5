"""Shared fixtures: one real Prefect server per test session, and a private store and output
folder per test, rendered small so the suite stays quick on two cores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.prefect_defaults import apply_prefect_defaults

apply_prefect_defaults()

SMALL = {"REELFLOW_SHORT_SIDE": "180", "REELFLOW_FPS": "12"}


@pytest.fixture(scope="session")
def prefect_api_url() -> str:
    """A real Prefect server for the whole session (it takes 12-20 s to start here)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A fresh store and output folder, set through the environment as a user would."""
    paths = {"store": tmp_path / "store", "out": tmp_path / "out"}
    monkeypatch.setenv("REELFLOW_STORE", str(paths["store"]))
    monkeypatch.setenv("REELFLOW_OUT", str(paths["out"]))
    for name, value in SMALL.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REELFLOW_PROFILE", raising=False)
    return paths


@pytest.fixture
def cli_env(workspace: dict[str, Path]) -> dict[str, str]:
    """The environment for a `reelflow` subprocess (without a Prefect server)."""
    return dict(os.environ)


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A self-signed certificate the SDKs trust for this session (through SSL_CERT_FILE), so
    fakes can speak HTTPS as the real APIs do: several SDKs only accept https:// URLs."""
    from tests.fakes.server import TlsCert

    cert = TlsCert(tmp_path_factory.mktemp("tls"))
    saved = {name: os.environ.get(name)
             for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NO_PROXY")}
    os.environ["SSL_CERT_FILE"] = str(cert.cert_file)  # httpx, httpx2
    os.environ["REQUESTS_CA_BUNDLE"] = str(cert.cert_file)  # requests (google-auth's tokens)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    yield cert
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def fresh_buckets() -> None:
    """Each test reaches buckets anew: a process keeps its buckets' clients (cache.open_bucket),
    and tests start fakes on new ports and change credentials between tests."""
    from cache import open_bucket

    open_bucket.cache_clear()


@pytest.fixture
def register_provider(monkeypatch: pytest.MonkeyPatch):
    """Register a test's provider for that test alone: a provider left in the registry would
    change what later tests see (the lists of known providers in messages)."""
    from tasks.providers import registry

    registry.names()  # the built-ins first, so undoing this test's entry leaves them

    def register(provider) -> None:
        monkeypatch.setitem(registry._providers, (provider.modality, provider.name), provider)

    return register
