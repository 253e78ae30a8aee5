"""Node leases in a bucket, so that machines sharing a gs:// store generate (and pay for) each
node once.

GCS has no locks, but it creates an object only if absent (`if_generation_match=0`) and
replaces or deletes one only at the generation the request names; every write makes a new
generation. A lease is such an object, `leases/<node key>` under the store's prefix, empty, its
custom metadata naming the holder: a random id, host, pid, and the TTL it promises to renew
within.

- Claim: create the lease only if absent; the one create that succeeds holds it.
- Renew: a background thread rewrites it every third of the TTL, at the generation it last
  wrote. A 412 there means another machine took it over: the holder stops renewing and never
  deletes it. (Its work still finishes and is stored; the result under that key is the same.)
- Release: delete it at the holder's generation when the work ends, whatever the outcome.
- Wait: a machine that finds the lease held polls it (at most every MAX_POLL_S) until the
  node's record appears (the caller's re-lookup then reuses it: nothing is paid) or the lease
  expires, then takes it over by writing at the expired generation: of several waiters,
  exactly one succeeds; the others see a new generation and wait on the new holder.

Expiry is judged on the waiter's own clock only: a lease whose generation the waiter has seen
unchanged for longer than the holder's TTL was not renewed for that long, so its holder died
or lost the bucket. Wall clocks of different machines are never compared (no "expires at"
is trusted), so clock skew can neither make a live lease look expired nor keep a dead one
alive. The price: a waiter that meets an abandoned lease waits one whole TTL before taking it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from google.api_core.exceptions import PreconditionFailed
from google.cloud import storage

from cache.gcs_client import GCS_FAILURES, TIMEOUT_S, failures_as, object_uri

RENEWALS_PER_TTL = 3
MAX_POLL_S = 2.0  # a waiter notices a stored record or an expiry within this


class LeaseError(RuntimeError):
    """A request about a node's lease failed; the message names the lease object."""


@contextmanager
def node_lease(bucket: storage.Bucket, name: str, ttl_s: float,
               made: Callable[[], bool]) -> Iterator[None]:
    """Run the body holding the lease `name`, or without it once `made()` says another
    machine has stored the work meanwhile (the body's own lookup then finds it)."""
    lease = claim(bucket, name, ttl_s, made)
    if lease is None:
        yield
        return
    try:
        yield
    finally:
        lease.release()


def claim(bucket: storage.Bucket, name: str, ttl_s: float,
          made: Callable[[], bool]) -> Lease | None:
    """Wait until this process holds the lease `name` (see the module docstring); None when
    `made()` became true first."""
    holder = {"holder": uuid.uuid4().hex, "host": socket.gethostname(), "pid": str(os.getpid()),
              "ttl_s": f"{ttl_s:g}"}
    watched: _Watched | None = None
    while True:
        replacing = watched.generation if watched and watched.expired() else 0
        try:
            return Lease(bucket, name, holder, ttl_s, _write(bucket, name, holder, replacing))
        except PreconditionFailed:
            pass  # held by another, or taken over by another waiter first
        found = _look(bucket, name)
        if found and _holder(found) == holder["holder"]:
            # Our write succeeded but its reply was lost; the client's retry got the 412.
            return Lease(bucket, name, holder, ttl_s, found.generation)
        if made():
            return None
        if found is None:
            watched = None  # released just now: claim it again
            continue
        if watched is None or watched.generation != found.generation:
            watched = _Watched(found.generation, _ttl_of(found, ttl_s), time.monotonic())
        time.sleep(min(watched.ttl_s / 4, MAX_POLL_S))


class Lease:
    """A lease this process holds: renewed in the background until `release`."""

    def __init__(self, bucket: storage.Bucket, name: str, holder: dict[str, str], ttl_s: float,
                 generation: int):
        self.bucket, self.name, self.holder, self.ttl_s = bucket, name, holder, ttl_s
        self.generation = generation
        self.lost = False  # another machine took it over: never renewed or deleted again
        self._released = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"lease {name}", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Stop renewing and delete the lease, unless it was lost. Never raises: a lease left
        behind expires by itself, so other machines only wait one TTL longer."""
        self._released.set()
        self._renewer.join()
        if self.lost:
            return
        try:
            self.bucket.blob(self.name).delete(if_generation_match=self.generation,
                                               timeout=TIMEOUT_S)
        except GCS_FAILURES:
            pass  # taken over since, gone after our own retried delete, or out of reach

    def _renew(self) -> None:
        while not self._released.wait(self.ttl_s / RENEWALS_PER_TTL):
            try:
                self.generation = _write(self.bucket, self.name, self.holder, self.generation)
            except PreconditionFailed:
                if not self._still_ours():
                    self.lost = True
                    return
            except LeaseError:
                continue  # a transient failure: the TTL leaves room for two more tries

    def _still_ours(self) -> bool:
        """After a renewal's 412: whether the lease still names us (our write's reply was lost
        and the client's retry refused); if so, carry on from its generation."""
        try:
            found = _look(self.bucket, self.name)
        except LeaseError:
            return True  # cannot tell now: the next renewal asks again
        if found is None or _holder(found) != self.holder["holder"]:
            return False
        self.generation = found.generation
        return True


@dataclass(frozen=True)
class _Watched:
    """A generation of someone else's lease, and when this process first saw it."""

    generation: int
    ttl_s: float
    since: float  # time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() - self.since > self.ttl_s


def _write(bucket: storage.Bucket, name: str, holder: dict[str, str], generation: int) -> int:
    """Create (`generation` 0) or replace the lease at `generation`; its new generation."""
    blob = bucket.blob(name)
    blob.metadata = holder
    with failures_as(LeaseError, "write lease", object_uri(blob)):
        blob.upload_from_string(b"", if_generation_match=generation, timeout=TIMEOUT_S)
    return blob.generation


def _look(bucket: storage.Bucket, name: str) -> storage.Blob | None:
    with failures_as(LeaseError, "read lease", f"gs://{bucket.name}/{name}"):
        return bucket.get_blob(name, timeout=TIMEOUT_S)


def _holder(found: storage.Blob) -> str | None:
    return (found.metadata or {}).get("holder")


def _ttl_of(found: storage.Blob, default: float) -> float:
    """The TTL the holder promised to renew within; ours if it did not say."""
    try:
        return float((found.metadata or {})["ttl_s"])
    except (KeyError, ValueError):
        return default
