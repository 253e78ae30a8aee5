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


def test_chaos_decides_each_unscripted_request_before_or_after_its_route_runs(tls):
    """A fault returned without running the route does no work; a reply changed after it ran
    does (a reply broken on its way back); scripted faults still come first."""
    served = []
    server = FakeServer(tls)
    server.route("POST", r"^/v1/echo$", lambda r: served.append(r.json()["a"]) or Response.json(
        {"got": r.json()["a"]}))
    fates = iter(["before", "after", "route", "reset"])

    def decide(request, answer):
        fate = next(fates)
        if fate == "before":
            return Response.json({}, 503)
        if fate == "after":
            return Response(200, answer().body[:5], {"Content-Type": "application/json"})
        return RESET if fate == "reset" else answer()

    server.chaos(decide)
    server.fail("POST", r"^/v1/echo$", [Response.json({}, 429)])
    with server, httpx.Client(base_url=server.url) as client:
        assert client.post("/v1/echo", json={"a": 0}).status_code == 429  # scripted first
        assert client.post("/v1/echo", json={"a": 1}).status_code == 503
        assert client.post("/v1/echo", json={"a": 2}).content == b'{"got'
        assert client.post("/v1/echo", json={"a": 3}).json() == {"got": 3}
        with pytest.raises(httpx.TransportError):
            client.post("/v1/echo", json={"a": 4})
    assert served == [2, 3]
