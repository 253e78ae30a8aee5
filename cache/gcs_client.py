"""Reaching Google Cloud Storage: gs:// addresses, the client, timeouts and the errors to catch.
Shared by the GCS artifact store and GCS publishing."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from google.api_core.exceptions import GoogleAPICallError, PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

TIMEOUT_S = (10, 120)  # (connect, read) seconds for every request
# requests' errors are OSErrors; the media errors come from the upload/download machinery
GCS_FAILURES = (GoogleAPICallError, GoogleAuthError, OSError, DataCorruption, InvalidResponse)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_SEGMENT_BAD = re.compile(r"[\\\x00-\x1f\x7f]")


@dataclass(frozen=True)
class GcsTarget:
    bucket: str
    prefix: str  # no leading or trailing "/"; may be ""

    @classmethod
    def parse(cls, uri: str) -> GcsTarget:
        """`gs://bucket[/prefix]`; a ValueError with a one-line message says what is wrong."""
        if not uri.startswith("gs://"):
            raise ValueError(f"not a gs:// URI: {uri!r}")
        bucket, _, prefix = uri[len("gs://"):].partition("/")
        _check_bucket(bucket)
        prefix = prefix.removesuffix("/")
        if prefix:
            for segment in prefix.split("/"):
                check_segment(segment, f"prefix of {uri!r}")
        return cls(bucket, prefix)

    def object_name(self, name: str, file: str) -> str:
        return "/".join(part for part in (self.prefix, name, file) if part)


def _check_bucket(bucket: str) -> None:
    """GCS bucket naming rules (https://cloud.google.com/storage/docs/buckets#naming)."""
    problem = None
    if not 3 <= len(bucket) <= (222 if "." in bucket else 63):
        problem = "must be 3-63 characters (up to 222 with dots)"
    elif not _BUCKET.fullmatch(bucket):
        problem = "use only a-z 0-9 - _ . and start and end with a letter or digit"
    elif any(not part or len(part) > 63 for part in bucket.split(".")):
        problem = "each dot-separated part must be 1-63 characters"
    elif bucket.startswith("goog") or "google" in bucket:
        problem = "names starting with 'goog' or containing 'google' are reserved"
    else:
        try:
            ipaddress.ip_address(bucket)
            problem = "an IP address is not a bucket name"
        except ValueError:
            pass
    if problem:
        raise ValueError(f"bad bucket name {bucket!r}: {problem}")


def check_segment(segment: str, what: str) -> None:
    if segment in ("", ".", ".."):
        raise ValueError(f"bad {what}: empty, '.' or '..' path segment")
    if "/" in segment or _SEGMENT_BAD.search(segment):
        raise ValueError(f"bad {what}: {segment!r} holds '/', a backslash or a control character")


def storage_client(project: str | None) -> storage.Client:
    """An anonymous client when STORAGE_EMULATOR_HOST points at an emulator, else ADC.

    Without a project, ADC's own project is used (passing None would mean "no project").
    """
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client() if project is None else storage.Client(project=project)


def object_uri(blob: storage.Blob) -> str:
    return f"gs://{blob.bucket.name}/{blob.name}"


@contextmanager
def failures_as(error_type: type[Exception], action: str, uri: str) -> Iterator[None]:
    """Turn any transport or API error into one `error_type` line naming the object; a 412
    passes through, for the caller to judge."""
    try:
        yield
    except PreconditionFailed:
        raise
    except GCS_FAILURES as error:
        detail = " ".join(str(error).split())[:300]
        raise error_type(f"{action} {uri} failed: {detail}") from error
