"""Signed links to a job's video: `?expires=…&signature=…` lets whoever holds the link fetch
that one video until it expires, without a key (a browser's <video> element, the Prefect UI's
link, a webhook receiver). The signature is an HMAC of the job id and the expiry with the
server's URL secret."""

from __future__ import annotations

import hashlib
import hmac
import time

WEEK = 7 * 86400


def signature(secret: str, job_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{job_id}.{expires}".encode(), hashlib.sha256).hexdigest()


def signed_video_url(public_url: str, secret: str, job_id: str, seconds: int = WEEK) -> str:
    expires = int(time.time()) + seconds
    return (f"{public_url}/jobs/{job_id}/video?expires={expires}"
            f"&signature={signature(secret, job_id, expires)}")


def is_valid(secret: str, job_id: str, expires: int | None, given: str | None) -> bool:
    if expires is None or not given or expires < time.time():
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters, and a link is user input.
    return hmac.compare_digest(signature(secret, job_id, expires).encode(), given.encode())
