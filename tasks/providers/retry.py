"""The one retry policy for provider calls: transient failures only, exponential backoff with
jitter, `Retry-After` honoured, and both an attempt budget and a deadline per node.

SDK-level retries are switched off (or left to GETs only) by each provider so that the number
of calls per node stays bounded by `attempts` here.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import TypeVar

import google.auth.exceptions
import httpx
import httpx2
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from config.secrets import redact
from tasks import stopping
from tasks.providers import billing
from tasks.providers.base import BrokenOutput, ProviderError, TransientProviderError

T = TypeVar("T")
TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_backoff = wait_random_exponential(multiplier=0.5, max=20)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, TransientProviderError) and error.retry_after is not None:
        return min(error.retry_after, 60.0)
    return _backoff(state)


def with_retries(call: Callable[[], T], *, attempts: int, deadline_s: float) -> T:
    """`call()` until it succeeds, fails permanently, runs out of attempts or of time.

    Each attempt stops first if the run is stopping. A transient failure that used up the
    attempts comes out permanent, so an outer loop never multiplies the bound."""
    retrying = Retrying(
        retry=retry_if_exception_type(TransientProviderError),
        stop=stop_after_attempt(attempts) | stop_after_delay(deadline_s),
        wait=_wait,
        sleep=stopping.wait,
        reraise=True,
    )
    try:
        return retrying(lambda: attempt(call))
    except TransientProviderError as error:
        raise ProviderError(f"{error} (gave up after {retrying.statistics.get('attempt_number', attempts)}"
                            " attempts)") from None


def attempt(call: Callable[[], T]) -> T:
    """One try of `call()`: not started once the run is stopping; a broken reply charged."""
    stopping.check()
    try:
        return call()
    except BrokenOutput as error:
        billing.charge(error)
        raise


def retry_after_seconds(value: str | None) -> float | None:
    """A `Retry-After` header (seconds or an HTTP date) in seconds."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def http_error(provider: str, status: int, message: str,
               retry_after: str | None = None) -> ProviderError:
    """The provider error for an HTTP status: transient for 429/5xx-like, permanent otherwise."""
    text = redact(f"{provider}: HTTP {status}: {message}")[:500]  # servers echo keys back
    if status in TRANSIENT_STATUS:
        return TransientProviderError(text, retry_after_seconds(retry_after))
    return ProviderError(text, status)


# Timeouts and dropped connections, as the SDKs raise them: httpx (elevenlabs, replicate,
# openai), httpx2 (google-genai 3.x's fork, whose errors are not httpx's), google-auth.
NETWORK_ERRORS = (httpx.TransportError, httpx2.TransportError,
                  google.auth.exceptions.TransportError, ConnectionError, TimeoutError)


def network_error(provider: str, error: Exception) -> ProviderError | None:
    """A transient error for timeouts and dropped connections; None for anything else."""
    if isinstance(error, NETWORK_ERRORS):
        return TransientProviderError(f"{provider}: {type(error).__name__}: {error}"[:500])
    return None
