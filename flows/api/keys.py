"""API keys and their limits. Keys are configured as SHA-256 hashes, one per line of a file
(REELFLOW_API_KEYS_FILE), so the file holds nothing worth stealing; a presented key is hashed
and compared with every hash in constant time. The file is read again when it changes, so a key
added or removed counts without a restart. `new_key` makes one."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from pathlib import Path

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

HASH = re.compile(r"[0-9a-f]{64}")
log = logging.getLogger("reelflow.api")


class KeysError(ValueError):
    """The keys file cannot be read or has a line that is not a SHA-256 hash."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A new key and the line for the keys file (its hash)."""
    key = "rf_" + secrets.token_urlsafe(32)
    return key, digest(key)


class Keys:
    def __init__(self, hashes: list[str], path: Path | None = None):
        self.hashes, self.path = hashes, path
        self.stamp = _stamp(path) if path else None

    @classmethod
    def load(cls, path: Path) -> Keys:
        """One hash per line; blank lines and text after `#` are ignored."""
        return cls(_read(path), path)

    def _refresh(self) -> None:
        """The file read again when it changed: a key added or removed counts at once. A file
        that cannot be read leaves the keys as they were (and says so in the log)."""
        stamp = _stamp(self.path)
        if stamp == self.stamp:
            return
        self.stamp = stamp
        try:
            self.hashes = _read(self.path)
        except KeysError as error:
            log.warning("%s: the keys read before stay in use", error)

    def match(self, authorization: str | None) -> str | None:
        """The hash of the key in an `Authorization: Bearer KEY` header, if it is one of ours.

        Every hash is compared, whatever matched: the time taken says nothing of which."""
        if self.path:
            self._refresh()
        scheme, _, key = (authorization or "").partition(" ")
        presented = digest(key.strip()) if scheme.lower() == "bearer" else ""
        found = None
        for known in self.hashes:
            if hmac.compare_digest(known, presented):
                found = known
        return found


def _stamp(path: Path) -> tuple | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size, found.st_ino


def _read(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise KeysError(f"api keys file: cannot read {path}: {error}") from None
    hashes = []
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip().lower()
        if value and not HASH.fullmatch(value):
            raise KeysError(f"api keys file: {path}, line {number}: not a SHA-256 hash "
                            "(64 hex digits; `reelflow api-key` makes a key and its hash)")
        if value:
            hashes.append(value)
    if not hashes:
        raise KeysError(f"api keys file: {path} has no keys (`reelflow api-key` makes one)")
    return hashes


class RateLimits:
    """Requests per minute per key, in a moving window (the `limits` library)."""

    def __init__(self, per_minute: int):
        self.item = RateLimitItemPerMinute(per_minute)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, key_hash: str) -> int | None:
        """None if the key may make this request now (it is counted), else seconds to wait."""
        if self.limiter.hit(self.item, key_hash):
            return None
        reset = self.limiter.get_window_stats(self.item, key_hash).reset_time
        return max(1, int(reset - time.time()) + 1)
