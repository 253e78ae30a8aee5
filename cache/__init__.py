"""The artifact store: content-addressed blobs and the node index, in a folder or a bucket."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from cache.buckets import Bucket, BucketTarget, scheme_of
from cache.store import BaseArtifactStore, ArtifactStore


@cache
def open_store(location: str) -> BaseArtifactStore:
    """One store object per location and process, shared by every task thread: a folder, or
    gs://BUCKET/PREFIX or s3://BUCKET/PREFIX for a store every machine of a cluster shares."""
    if scheme_of(location) is None:
        return ArtifactStore(Path(location).expanduser())
    from cache.bucket_store import BucketArtifactStore

    return BucketArtifactStore(open_bucket(location))


@cache
def open_bucket(location: str) -> Bucket:
    """The bucket of a gs:// or s3:// location, reached with this machine's settings and
    credentials and checked once per process (`Bucket.check_access`: a BucketError names what
    is missing, and is not kept; `warnings` says what the service does not do)."""
    from config.settings import BucketSettings

    target = BucketTarget.parse(location)
    settings = BucketSettings()
    if target.scheme == "gs":
        from cache.gcs_bucket import GcsBucket, signing_credentials

        bucket = GcsBucket(target, project=settings.gcs_project,
                           signer=signing_credentials(settings.gcs_signing_key))
    else:
        from cache.s3_bucket import S3Bucket

        bucket = S3Bucket(target, endpoint_url=settings.s3_endpoint_url,
                          addressing_style=settings.s3_addressing_style)
    bucket.warnings = bucket.check_access()
    return bucket
