"""Object storage, one interface for every service: gs://BUCKET/PREFIX (Google Cloud Storage)
and s3://BUCKET/PREFIX (Amazon S3 and S3-compatible services).

The bucket-backed store (cache.bucket_store), node leases (cache.leases) and publishing
(tasks.bucket_publish) are written once against `Bucket`; cache.gcs_bucket and cache.s3_bucket
are its two implementations. What they share:

- Every write can be conditional on what the writer saw (`expect`): `ABSENT` creates only if no
  object has the name (GCS `ifGenerationMatch=0`, S3 `If-None-Match: *`), a version replaces
  only that version (a GCS generation, an S3 ETag), `ANY` writes unconditionally. A refused
  condition raises `Conflict`, so two machines never overwrite each other blindly.
- The service's own checksum of the bytes it holds (`ObjectStat.checksum`: GCS's CRC32C, S3's
  SHA-256) and `Bucket.checksum` of a local file in the same form, so a reader can tell that
  an object still holds the bytes written, without downloading it.
- Every request has a timeout, and every failure is one `BucketError` naming the object.
"""

from __future__ import annotations

import ipaddress
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SCHEMES = ("gs", "s3")
SUPPORTED = "gs://BUCKET/PREFIX or s3://BUCKET/PREFIX"
TIMEOUT_S = (10, 120)  # (connect, read) seconds for every request
MAX_SIGNED_EXPIRY_S = 7 * 24 * 3600  # the longest a v4 signature (GCS and S3 alike) lasts

_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_SEGMENT_BAD = re.compile(r"[\\\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class BucketError(RuntimeError):
    """A request to a bucket failed, or it holds bad bytes; the message names the object."""


class Conflict(BucketError):
    """A conditional write or delete was refused: the object is not as the writer saw it."""


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ABSENT = _Absent()  # expect no object under the name
ANY = _Any()  # expect nothing: write whatever is there
Expect = _Absent | _Any | str  # or the version the writer saw


@dataclass(frozen=True)
class ObjectStat:
    name: str  # the object's name in its bucket
    size: int
    version: str  # what `expect` names to replace exactly this object
    checksum: str | None  # the service's checksum of the bytes it holds (see Bucket.checksum)
    metadata: Mapping[str, str]
    updated: float  # POSIX seconds of its last write


@dataclass(frozen=True)
class BucketTarget:
    scheme: str  # one of SCHEMES
    bucket: str
    prefix: str  # no leading or trailing "/"; may be ""

    @classmethod
    def parse(cls, uri: str) -> BucketTarget:
        """`gs://bucket[/prefix]` or `s3://bucket[/prefix]`; a ValueError with a one-line
        message says what is wrong."""
        scheme = scheme_of(uri)
        if scheme is None:
            raise ValueError(f"{uri!r} is not a bucket URL: use {SUPPORTED}")
        if scheme not in SCHEMES:
            raise ValueError(f"{uri!r}: {scheme}:// is not supported; use {SUPPORTED}")
        bucket, _, prefix = uri[len(scheme) + 3:].partition("/")
        if not bucket:
            raise ValueError(f"{uri!r} names no bucket: use {scheme}://BUCKET/PREFIX")
        _check_bucket(scheme, bucket)
        prefix = prefix.removesuffix("/")
        if prefix:
            for segment in prefix.split("/"):
                check_segment(segment, f"prefix of {uri!r}")
        return cls(scheme, bucket, prefix)

    def object_name(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def uri(self, name: str = "") -> str:
        return f"{self.scheme}://{self.bucket}/{name}"

    def __str__(self) -> str:
        return self.uri(self.prefix).rstrip("/")


def scheme_of(location: str) -> str | None:
    """The URL scheme of a store or publish location (lower case), None for a plain path."""
    found = _SCHEME.match(location)
    return found.group(1).lower() if found else None


def check_location(location: str) -> None:
    """A folder or a supported bucket; a ValueError saying what is wrong otherwise."""
    scheme = scheme_of(location)
    if scheme is None:
        return
    if scheme not in SCHEMES:
        raise ValueError(f"{location!r}: {scheme}:// is not supported; use a folder, {SUPPORTED}")
    BucketTarget.parse(location)


def check_segment(segment: str, what: str) -> None:
    if segment in ("", ".", ".."):
        raise ValueError(f"bad {what}: empty, '.' or '..' path segment")
    if "/" in segment or _SEGMENT_BAD.search(segment):
        raise ValueError(f"bad {what}: {segment!r} holds '/', a backslash or a control character")


def _check_bucket(scheme: str, bucket: str) -> None:
    problem = _gcs_bucket_problem(bucket) if scheme == "gs" else _s3_bucket_problem(bucket)
    if problem is None:
        try:
            ipaddress.ip_address(bucket)
            problem = "an IP address is not a bucket name"
        except ValueError:
            pass
    if problem:
        raise ValueError(f"bad bucket name {bucket!r}: {problem}")


def _gcs_bucket_problem(bucket: str) -> str | None:
    """https://cloud.google.com/storage/docs/buckets#naming"""
    if not 3 <= len(bucket) <= (222 if "." in bucket else 63):
        return "must be 3-63 characters (up to 222 with dots)"
    if not _GCS_BUCKET.fullmatch(bucket):
        return "use only a-z 0-9 - _ . and start and end with a letter or digit"
    if any(not part or len(part) > 63 for part in bucket.split(".")):
        return "each dot-separated part must be 1-63 characters"
    if bucket.startswith("goog") or "google" in bucket:
        return "names starting with 'goog' or containing 'google' are reserved"
    return None


def _s3_bucket_problem(bucket: str) -> str | None:
    """https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html"""
    if not 3 <= len(bucket) <= 63:
        return "must be 3-63 characters"
    if not _S3_BUCKET.fullmatch(bucket):
        return "use only a-z 0-9 - . and start and end with a letter or digit"
    if ".." in bucket:
        return "two dots may not be adjacent"
    return None


class Bucket(ABC):
    """One bucket of one service, as the store, the leases and publishing use it."""

    target: BucketTarget
    checksum_key: str  # the metadata entry a writer keeps its `checksum` of the bytes in
    warnings: list[str]  # what `check_access` found the service does not do (cache.open_bucket)

    def uri(self, name: str) -> str:
        return self.target.uri(name)

    @abstractmethod
    def stat(self, name: str) -> ObjectStat | None:
        """The object's size, version, checksum and metadata; None when there is none."""

    @abstractmethod
    def read(self, name: str) -> bytes | None:
        """The object's bytes; None when there is none."""

    @abstractmethod
    def download(self, name: str, path: Path) -> None:
        """Write the object's bytes to `path` (a BucketError when there is none)."""

    @abstractmethod
    def write(self, name: str, body: bytes | Path, *, content_type: str,
              expect: Expect = ANY, metadata: Mapping[str, str] | None = None,
              cache_control: str | None = None) -> str:
        """Write the object from bytes or a file, if it is as `expect` says (else `Conflict`);
        its new version. An unconditional write may be retried: writing twice does no harm."""

    @abstractmethod
    def delete(self, name: str, *, expect: str | None = None) -> None:
        """Delete the object (at version `expect`, if given); an absent object is no error."""

    @abstractmethod
    def list(self, folder: str, *, full: bool = False) -> list[ObjectStat]:
        """Every object whose name starts with `folder` + "/". Only `full` listings carry
        metadata and checksums (S3 asks for each object's; GCS lists them anyway)."""

    @abstractmethod
    def url(self, name: str, expiry_s: int) -> tuple[str, bool]:
        """Where the object can be read over HTTP: (a signed URL valid for `expiry_s`, True),
        or (its public URL, False) where this machine cannot sign. Signing makes no request."""

    @abstractmethod
    def checksum(self, path: Path) -> str:
        """A local file's checksum in the form `ObjectStat.checksum` reports it."""

    @abstractmethod
    def check_access(self) -> list[str]:
        """Ask the service whether the bucket exists and this machine may read and write it:
        a BucketError naming the bucket and what is missing, or warnings about what the service
        does not do (conditional writes) for the caller to show."""
