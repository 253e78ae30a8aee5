"""The artifact store: content-addressed blobs and the node index, local or on GCS."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from cache.store import ArtifactStore


@cache
def open_store(location: str) -> ArtifactStore:
    """One store object per location and process, shared by every task thread: a folder, or
    gs://BUCKET/PREFIX for a store every machine of a cluster shares."""
    if location.startswith("gs://"):
        from cache.gcs_store import GcsArtifactStore

        return GcsArtifactStore(location)
    return ArtifactStore(Path(location).expanduser())
