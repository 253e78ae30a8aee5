"""The fake HTTPS server itself: routes, scripted faults, and the call log."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.server import RESET, FakeServer, Response


def test_routes_faults_and_log(tls):
    server = FakeServer(tls)
    server.route("POST", r"^/v1/echo$", lambda r: Response.json({"got": r.json()}))
    server.fail("POST", r"^/v1/echo$", [Response.json({}, 429, {"Retry-After": "0"}), RESET])
    with server, httpx.Client(base_url=server.url) as client:
        assert client.post("/v1/echo", json={"a": 1}).status_code == 429
        with pytest.raises(httpx.TransportError):
            client.post("/v1/echo", json={"a": 2})
        assert client.post("/v1/echo", json={"a": 3}).json() == {"got": {"a": 3}}
        assert client.get("/nope").status_code == 404
    assert [r.json() for r in server.calls("POST", "echo")] == [{"a": 1}, {"a": 2}, {"a": 3}]
