"""Who is signed in to the web page: their API key, kept in an HttpOnly, SameSite=Strict cookie
(script on a page cannot read it, and another site's page cannot send it), and the CSRF token
every state-changing form carries: an HMAC of the key's hash with the server's URL secret, so
a page that does not know the key cannot forge it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

COOKIE = "reelflow_key"
CSRF_FIELD = "csrf"
COOKIE_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Session:
    key: str
    key_hash: str
    csrf: str


class NotSignedIn(Exception):
    """The request has no cookie of a key the server knows (now)."""


class Forged(Exception):
    """A state-changing request without the signed-in key's CSRF token."""


def csrf_token(secret: str, key_hash: str) -> str:
    return hmac.new(secret.encode(), f"csrf.{key_hash}".encode(), hashlib.sha256).hexdigest()


def session_of(request: Request) -> Session:
    """The signed-in key; a key removed from the keys file signs its cookie out at once."""
    key = request.cookies.get(COOKIE)
    found = request.app.state.keys.match(f"Bearer {key}") if key else None
    if found is None:
        raise NotSignedIn()
    request.state.key = found  # the request's log line names the key, as the API's do
    return Session(key, found, csrf_token(request.app.state.url_secret, found))


def check_csrf(session: Session, given: str | None) -> None:
    if not given or not hmac.compare_digest(session.csrf.encode(), given.encode()):
        raise Forged()


def sign_in(response: Response, request: Request, key: str) -> None:
    response.set_cookie(COOKIE, key, max_age=COOKIE_SECONDS, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def sign_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
