"""Node leases in a bucket, so that machines sharing a gs:// or s3:// store generate (and pay
for) each node once.

Buckets have no locks, but they create an object only if absent and replace or delete one only
at the version the request names (cache.buckets: a GCS generation, an S3 ETag); every write
makes a new version. A lease is such an object, `leases/<node key>` under the store's prefix,
its custom metadata naming the holder: a random id, host, pid, and the TTL it promises to renew
within. Its body is a fresh random token on every write, so that even a service whose version
is a hash of the bytes (an S3 ETag) gives every write a new version.

- Claim: create the lease only if absent; the one create that succeeds holds it.
- Renew: a background thread rewrites it every third of the TTL, at the version it last
  wrote. A 412 there means another machine took it over: the holder stops renewing and never
  deletes it. (Its work still finishes and is stored; the result under that key is the same.)
- Release: delete it at the holder's version when the work ends, whatever the outcome.
- Wait: a machine that finds the lease held polls it (at most every MAX_POLL_S) until the
  node's record appears (the caller's re-lookup then reuses it: nothing is paid) or the lease
  expires, then takes it over by writing at the expired version: of several waiters,
  exactly one succeeds; the others see a new version and wait on the new holder.

Expiry is judged on the waiter's own clock only: a lease whose version the waiter has seen
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

from cache.buckets import ABSENT, Bucket, BucketError, Conflict, Expect, ObjectStat

RENEWALS_PER_TTL = 3
MAX_POLL_S = 2.0  # a waiter notices a stored record or an expiry within this


@contextmanager
def node_lease(bucket: Bucket, name: str, ttl_s: float,
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


def claim(bucket: Bucket, name: str, ttl_s: float,
          made: Callable[[], bool]) -> Lease | None:
    """Wait until this process holds the lease `name` (see the module docstring); None when
    `made()` became true first."""
    holder = {"holder": uuid.uuid4().hex, "host": socket.gethostname(), "pid": str(os.getpid()),
              "ttl-s": f"{ttl_s:g}"}
    watched: _Watched | None = None
    while True:
        replacing = watched.version if watched and watched.expired() else ABSENT
        try:
            return Lease(bucket, name, holder, ttl_s, _write(bucket, name, holder, replacing))
        except Conflict:
            pass  # held by another, or taken over by another waiter first
        found = bucket.stat(name)
        if found and _holder(found) == holder["holder"]:
            # Our write succeeded but its reply was lost; the client's retry got the 412.
            return Lease(bucket, name, holder, ttl_s, found.version)
        if made():
            return None
        if found is None:
            watched = None  # released just now: claim it again
            continue
        if watched is None or watched.version != found.version:
            watched = _Watched(found.version, _ttl_of(found, ttl_s), time.monotonic())
        time.sleep(min(watched.ttl_s / 4, MAX_POLL_S))


class Lease:
    """A lease this process holds: renewed in the background until `release`."""

    def __init__(self, bucket: Bucket, name: str, holder: dict[str, str], ttl_s: float,
                 version: str):
        self.bucket, self.name, self.holder, self.ttl_s = bucket, name, holder, ttl_s
        self.version = version
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
            self.bucket.delete(self.name, expect=self.version)
        except BucketError:
            pass  # taken over since, gone after our own retried delete, or out of reach

    def _renew(self) -> None:
        while not self._released.wait(self.ttl_s / RENEWALS_PER_TTL):
            try:
                self.version = _write(self.bucket, self.name, self.holder, self.version)
            except Conflict:
                if not self._still_ours():
                    self.lost = True
                    return
            except BucketError:
                continue  # a transient failure: the TTL leaves room for two more tries

    def _still_ours(self) -> bool:
        """After a renewal's 412: whether the lease still names us (our write's reply was lost
        and the client's retry refused); if so, carry on from its version."""
        try:
            found = self.bucket.stat(self.name)
        except BucketError:
            return True  # cannot tell now: the next renewal asks again
        if found is None or _holder(found) != self.holder["holder"]:
            return False
        self.version = found.version
        return True


@dataclass(frozen=True)
class _Watched:
    """A version of someone else's lease, and when this process first saw it."""

    version: str
    ttl_s: float
    since: float  # time.monotonic()

    def expired(self) -> bool:
        return time.monotonic() - self.since > self.ttl_s


def _write(bucket: Bucket, name: str, holder: dict[str, str], expect: Expect) -> str:
    """Create (`expect` ABSENT) or replace the lease at version `expect`; its new version."""
    return bucket.write(name, uuid.uuid4().hex.encode(), content_type="text/plain",
                        expect=expect, metadata=holder)


def _holder(found: ObjectStat) -> str | None:
    return found.metadata.get("holder")


def _ttl_of(found: ObjectStat, default: float) -> float:
    """The TTL the holder promised to renew within; ours if it did not say."""
    try:
        return float(found.metadata["ttl-s"])
    except (KeyError, ValueError):
        return default
