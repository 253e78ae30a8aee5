"""Publish a finished video's folder to Google Cloud Storage: gs://bucket/prefix/<name>/.

<name> is reelflow's content-addressed folder name (slug + video digest), so the same name
always means the same video. Publishing looks before it writes: an object that already holds
the same bytes is kept, the small files that may change between runs (manifest, storyboard)
are replaced, and anything else that differs is refused. Every write is conditional
(`if_generation_match`): 0 creates only if absent, a generation replaces only the object we
looked at, so a concurrent writer or a retried request can never be overwritten blindly.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import google_crc32c
from google.api_core.exceptions import GoogleAPICallError, PreconditionFailed
from google.auth.credentials import AnonymousCredentials, Signing
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

VIDEO_FILE = "video.mp4"
MUTABLE_FILES = frozenset({"manifest.json", "storyboard.json"})  # may differ between runs
CONTENT_TYPES = {".mp4": "video/mp4", ".json": "application/json", ".ass": "text/x-ass"}
TIMEOUT_S = (10, 120)  # (connect, read) seconds for every request
MAX_SIGNED_EXPIRY_S = 7 * 24 * 3600  # the v4 limit
# requests' errors are OSErrors; the media errors come from the upload/download machinery
_FAILURES = (GoogleAPICallError, GoogleAuthError, OSError, DataCorruption, InvalidResponse)

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")
_SEGMENT_BAD = re.compile(r"[\\\x00-\x1f\x7f]")


class GcsPublishError(RuntimeError):
    """A publish to GCS failed; the message names the object."""


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
                _check_segment(segment, f"prefix of {uri!r}")
        return cls(bucket, prefix)

    def object_name(self, name: str, file: str) -> str:
        return "/".join(part for part in (self.prefix, name, file) if part)


@dataclass(frozen=True)
class PublishedObjects:
    folder: str  # gs://bucket/prefix/<name>/
    video_url: str  # v4 signed URL, or the public URL when there is no signer
    signed: bool
    uploaded: tuple[str, ...] = ()  # file names written by this call; () when all were there


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


def _check_segment(segment: str, what: str) -> None:
    if segment in ("", ".", ".."):
        raise ValueError(f"bad {what}: empty, '.' or '..' path segment")
    if "/" in segment or _SEGMENT_BAD.search(segment):
        raise ValueError(f"bad {what}: {segment!r} holds '/', a backslash or a control character")


def signing_credentials(key_file: Path | None) -> Signing | None:
    """Service-account credentials that can sign URLs, from a JSON key file; None without one."""
    if key_file is None:
        return None
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(str(key_file))


def storage_client(project: str | None) -> storage.Client:
    """An anonymous client when STORAGE_EMULATOR_HOST points at an emulator, else ADC.

    Without a project, ADC's own project is used (passing None would mean "no project").
    """
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client() if project is None else storage.Client(project=project)


def publish_to_gcs(target: GcsTarget, name: str, files: dict[str, Path], *,
                   client: storage.Client, signer: Signing | None,
                   expiry_s: int) -> PublishedObjects:
    """Upload `files` to <prefix>/<name>/<file name> and return where the video can be read."""
    _check_segment(name, "folder name")
    for file in files:
        _check_segment(file, "file name")
    if VIDEO_FILE not in files:
        raise ValueError(f"nothing to publish: {VIDEO_FILE} missing from {sorted(files)}")
    if not 0 < expiry_s <= MAX_SIGNED_EXPIRY_S:
        raise ValueError(f"expiry_s must be 1..{MAX_SIGNED_EXPIRY_S}, got {expiry_s}")
    bucket = client.bucket(target.bucket)
    # The video goes last: a reader who sees the video also sees the files beside it.
    order = sorted(files, key=lambda file: file == VIDEO_FILE)
    blobs = {file: bucket.blob(target.object_name(name, file)) for file in order}
    existing = {file: _stat(blobs[file]) for file in order}
    current = {file for file, found in existing.items()
               if found is not None and _same(found, files[file])}
    for file in order:  # refuse a conflicting video before this run's manifest lands beside it
        if existing[file] is not None and file not in current and file not in MUTABLE_FILES:
            raise GcsPublishError(_conflict(existing[file]))
    uploaded = tuple(file for file in order
                     if file not in current and _put(blobs[file], files[file], existing[file]))
    return PublishedObjects(folder=f"gs://{target.bucket}/{target.object_name(name, '')}/",
                            video_url=video_url(target, name, client=client, signer=signer,
                                                expiry_s=expiry_s),
                            signed=signer is not None, uploaded=uploaded)


def video_url(target: GcsTarget, name: str, *, client: storage.Client, signer: Signing | None,
              expiry_s: int) -> str:
    """Where the published video can be read: a v4 signed URL with a signer, else the public
    URL. Signing needs no request, so the manifest can record it before the upload."""
    video = client.bucket(target.bucket).blob(target.object_name(name, VIDEO_FILE))
    if signer is None:
        return video.public_url
    return video.generate_signed_url(version="v4", expiration=timedelta(seconds=expiry_s),
                                     method="GET", credentials=signer)


def _put(blob: storage.Blob, path: Path, found: storage.Blob | None) -> bool:
    """Create the object, or replace exactly the generation `found`; True when written."""
    content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    if blob.name.rsplit("/", 1)[-1] in MUTABLE_FILES:
        blob.cache_control = "no-cache"  # later runs replace it; don't let caches pin it
    try:
        with _failure("upload", blob):
            blob.upload_from_filename(str(path), content_type=content_type,
                                      if_generation_match=found.generation if found else 0,
                                      timeout=TIMEOUT_S)
        return True
    except PreconditionFailed:
        # Written since we looked: by another publisher, or by an attempt of ours whose
        # reply was lost and which the client then retried. Fine if it holds our bytes now.
        now = _stat(blob)
        if now is not None and _same(now, path):
            return False
        raise GcsPublishError(f"{_uri(blob)} changed while publishing; run again") from None


def _stat(blob: storage.Blob) -> storage.Blob | None:
    with _failure("read metadata of", blob):
        return blob.bucket.get_blob(blob.name, timeout=TIMEOUT_S)


def _same(found: storage.Blob, path: Path) -> bool:
    """Same bytes: size and CRC32C agree, and MD5 too where GCS has one (not for composites)."""
    if found.size != path.stat().st_size:
        return False
    crc, md5 = google_crc32c.Checksum(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            crc.update(chunk)
            md5.update(chunk)
    if found.crc32c != base64.b64encode(crc.digest()).decode():
        return False
    return found.md5_hash is None or found.md5_hash == base64.b64encode(md5.digest()).decode()


def _conflict(found: storage.Blob) -> str:
    return (f"{_uri(found)} already exists with different content (size {found.size}, "
            f"crc32c {found.crc32c}); refusing to overwrite it")


def _uri(blob: storage.Blob) -> str:
    return f"gs://{blob.bucket.name}/{blob.name}"


@contextmanager
def _failure(action: str, blob: storage.Blob) -> Iterator[None]:
    """Turn any transport or API error into one GcsPublishError naming the object."""
    try:
        yield
    except PreconditionFailed:
        raise  # the caller's to judge
    except _FAILURES as error:
        detail = " ".join(str(error).split())[:300]
        raise GcsPublishError(f"{action} {_uri(blob)} failed: {detail}") from error
