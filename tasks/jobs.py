"""Provider jobs that outlive the process: a video model's operation or prediction, recorded in
the store under its node's key before it is polled, so a run killed while waiting costs nothing
extra. The next run of the node resumes the job (polls it, downloads, checks) and submits again
only if the provider says it is gone or failed.

A provider that submits and polls calls `pending` before submitting, `submitted` right after,
and `gone` when the provider has lost or failed it. The node (tasks/nodes.py) forgets the job
once its result is stored, or when the result proved broken (the retry must ask anew).
Outside a node these do nothing: nothing records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from cache.store import BaseArtifactStore


@dataclass(frozen=True)
class _Book:
    store: BaseArtifactStore
    key: str
    provider: str


_book: ContextVar[_Book | None] = ContextVar("reelflow_job_book", default=None)


@contextmanager
def kept(store: BaseArtifactStore, key: str, provider: str) -> Iterator[None]:
    """Record the jobs submitted while the block runs under node `key`."""
    token = _book.set(_Book(store, key, provider))
    try:
        yield
    finally:
        _book.reset(token)


def pending() -> str | None:
    """The id of the job an earlier run submitted for this node, if it was not finished."""
    book = _book.get()
    job = book.store.pending_job(book.key) if book else None
    return job["id"] if job and job.get("provider") == book.provider else None


def submitted(job_id: str) -> None:
    book = _book.get()
    if book:
        book.store.remember_job(book.key, {"id": job_id, "provider": book.provider,
                                           "submitted_at": round(time.time(), 3)})


def gone() -> None:
    """The provider lost or failed the job: the next try submits anew."""
    book = _book.get()
    if book:
        book.store.forget_job(book.key)
