"""The API's one kind of refusal, and the per-key rate check every keyed request passes (the
API's routes and the web page's alike)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, *, details: Any = None,
                 retryable: bool = False, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.details, self.retryable, self.headers = details, retryable, headers or {}


def count_request(request: Request, key_hash: str) -> None:
    """Count a request of the key; 429 with Retry-After when it is over its rate."""
    wait = request.app.state.limits.retry_after(key_hash)
    if wait is not None:
        per_minute = request.app.state.settings.api_requests_per_minute
        raise ApiError(429, "rate_limited", f"over {per_minute} requests a minute for this key",
                       retryable=True, headers={"Retry-After": str(wait)})


def in_process(app: FastAPI, base_url: str, authorization: str) -> httpx.AsyncClient:
    """A client of the API that calls it in this process, as a client with that
    Authorization header would over the network (MCP's tools and the web page's changes)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url,
                             headers={"Authorization": authorization}, timeout=120)
