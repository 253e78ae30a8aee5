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


def check_csrf(session: Session, given: object) -> None:
    if not isinstance(given, str) or not hmac.compare_digest(session.csrf.encode(),
                                                              given.encode()):
        raise Forged()


def check_same_origin(request: Request) -> None:
    """A form posted from another site is refused, signing in included: SameSite keeps the
    cookie from such a post, but nothing else would stop another site signing a person in
    with its own key. Browsers say where a request comes from (Sec-Fetch-Site, Origin)."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    if site is not None and site not in ("same-origin", "none"):
        raise Forged()
    public = request.app.state.public_url.rstrip("/")
    if origin is not None and origin not in (f"{request.url.scheme}://{request.url.netloc}",
                                             public):
        raise Forged()


def sign_in(response: Response, request: Request, key: str) -> None:
    """Secure where the page is served over HTTPS, or its public address is (TLS ended by a
    proxy in front)."""
    secure = "https" in (request.url.scheme, request.app.state.public_url.split(":", 1)[0])
    response.set_cookie(COOKIE, key, max_age=COOKIE_SECONDS, httponly=True, samesite="strict",
                        secure=secure, path="/")


def sign_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
