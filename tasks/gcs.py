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
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import google_crc32c
from google.api_core.exceptions import PreconditionFailed
from google.auth.credentials import Signing
from google.cloud import storage

from cache.gcs_client import TIMEOUT_S, GcsTarget, check_segment, failures_as, object_uri

VIDEO_FILE = "video.mp4"
MUTABLE_FILES = frozenset({"manifest.json", "storyboard.json"})  # may differ between runs
CONTENT_TYPES = {".mp4": "video/mp4", ".json": "application/json", ".ass": "text/x-ass"}
MAX_SIGNED_EXPIRY_S = 7 * 24 * 3600  # the v4 limit


class GcsPublishError(RuntimeError):
    """A publish to GCS failed; the message names the object."""


@dataclass(frozen=True)
class PublishedObjects:
    folder: str  # gs://bucket/prefix/<name>/
    video_url: str  # v4 signed URL, or the public URL when there is no signer
    signed: bool
    uploaded: tuple[str, ...] = ()  # file names written by this call; () when all were there


def signing_credentials(key_file: Path | None) -> Signing | None:
    """Service-account credentials that can sign URLs, from a JSON key file; None without one."""
    if key_file is None:
        return None
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(str(key_file))


def publish_to_gcs(target: GcsTarget, name: str, files: dict[str, Path], *,
                   client: storage.Client, signer: Signing | None,
                   expiry_s: int) -> PublishedObjects:
    """Upload `files` to <prefix>/<name>/<file name> and return where the video can be read."""
    check_segment(name, "folder name")
    for file in files:
        check_segment(file, "file name")
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
        with failures_as(GcsPublishError, "upload", object_uri(blob)):
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
        raise GcsPublishError(f"{object_uri(blob)} changed while publishing; run again") from None


def _stat(blob: storage.Blob) -> storage.Blob | None:
    with failures_as(GcsPublishError, "read metadata of", object_uri(blob)):
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
    return (f"{object_uri(found)} already exists with different content (size {found.size}, "
            f"crc32c {found.crc32c}); refusing to overwrite it")
