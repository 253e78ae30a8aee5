"""Publish a finished video's folder to a bucket: gs:// or s3://BUCKET/PREFIX/<name>/.

<name> is reelflow's content-addressed folder name (slug + video digest), so the same name
always means the same video. Publishing looks before it writes: an object that already holds
the same bytes is kept, the small files that may change between runs (manifest, storyboard,
history) are replaced, and anything else that differs is refused. Every write is conditional
(cache.buckets `expect`): ABSENT creates only if absent, a version replaces only the object we
looked at, so a concurrent writer or a retried request can never be overwritten blindly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cache.buckets import (ABSENT, MAX_SIGNED_EXPIRY_S, Bucket, BucketError, Conflict, ObjectStat,
                           check_segment)
from tasks.history import HISTORY_FILE

VIDEO_FILE = "video.mp4"
# The small files that may differ between runs and machines; the video and subtitles may not.
MUTABLE_FILES = frozenset({"manifest.json", "storyboard.json", HISTORY_FILE})
CONTENT_TYPES = {".mp4": "video/mp4", ".json": "application/json", ".ass": "text/x-ass"}


@dataclass(frozen=True)
class PublishedObjects:
    folder: str  # gs:// or s3://bucket/prefix/<name>/
    uploaded: tuple[str, ...] = ()  # file names written by this call; () when all were there


def video_url(bucket: Bucket, name: str, expiry_s: int) -> str:
    """Where the published video can be read: signed for `expiry_s` where this machine can
    sign (always on S3; on GCS with a service-account key), else its public URL. Signing makes
    no request, so the manifest can record the URL before the upload."""
    if not 0 < expiry_s <= MAX_SIGNED_EXPIRY_S:
        raise ValueError(f"url_expiry_s must be 1..{MAX_SIGNED_EXPIRY_S}, got {expiry_s}")
    return bucket.url(bucket.target.object_name(name, VIDEO_FILE), expiry_s)[0]


def publish_to_bucket(bucket: Bucket, name: str, files: dict[str, Path]) -> PublishedObjects:
    """Upload `files` to <prefix>/<name>/<file name>, the video last."""
    check_segment(name, "folder name")
    for file in files:
        check_segment(file, "file name")
    if VIDEO_FILE not in files:
        raise ValueError(f"nothing to publish: {VIDEO_FILE} missing from {sorted(files)}")
    # The video goes last: a reader who sees the video also sees the files beside it.
    order = sorted(files, key=lambda file: file == VIDEO_FILE)
    names = {file: bucket.target.object_name(name, file) for file in order}
    existing = {file: bucket.stat(names[file]) for file in order}
    current = {file for file, found in existing.items()
               if found is not None and _same(bucket, found, files[file])}
    for file in order:  # refuse a conflicting video before this run's manifest lands beside it
        if existing[file] is not None and file not in current and file not in MUTABLE_FILES:
            raise BucketError(_conflict(bucket, existing[file]))
    uploaded = tuple(file for file in order if file not in current
                     and _put(bucket, names[file], files[file], existing[file]))
    return PublishedObjects(folder=bucket.uri(bucket.target.object_name(name, "")) + "/",
                            uploaded=uploaded)


def _put(bucket: Bucket, name: str, path: Path, found: ObjectStat | None) -> bool:
    """Create the object, or replace exactly the version `found`; True when written."""
    mutable = name.rsplit("/", 1)[-1] in MUTABLE_FILES
    try:
        bucket.write(name, path, expect=found.version if found else ABSENT,
                     content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                     cache_control="no-cache" if mutable else None)  # don't let caches pin it
        return True
    except Conflict:
        # Written since we looked: by another publisher, or by an attempt of ours whose
        # reply was lost and which the client then retried. Fine if it holds our bytes now.
        now = bucket.stat(name)
        if now is not None and _same(bucket, now, path):
            return False
        raise BucketError(f"{bucket.uri(name)} changed while publishing; run again") from None


def _same(bucket: Bucket, found: ObjectStat, path: Path) -> bool:
    return (found.size == path.stat().st_size and found.checksum is not None
            and found.checksum == bucket.checksum(path))


def _conflict(bucket: Bucket, found: ObjectStat) -> str:
    return (f"{bucket.uri(found.name)} already exists with different content (size {found.size}, "
            f"checksum {found.checksum}); refusing to overwrite it")
