"""The artifact store in a bucket, shared by every machine of a cluster: gs://BUCKET/PREFIX.

Layout under the prefix:
  blobs/<digest>         the bytes, with their content type; metadata `sha256` (= the name) and
                         `crc32c` (of the bytes as uploaded); created only if absent
  index/<node key>.json  the NodeRecord, written only after every blob it names exists
  kept/<name>.json       manifests of published videos; `gc` keeps what they reference
  jobs/<node key>.json   provider jobs submitted and not yet stored (tasks/jobs.py)
  leases/<node key>      which machine is generating the node now (cache.gcs_lease)

An object appears only once its upload is complete, so a crash leaves nothing that counts as a
hit. A hit needs every blob to exist with the size, sha256 and crc32c recorded when it was
written. GCS computes an object's crc32c from the bytes it holds, so bytes damaged on the way,
or an object overwritten with other bytes (even with its metadata copied along), no longer match.

`blob_path` returns a local file (ffmpeg and providers read files): the blob is downloaded once
into a local ArtifactStore of verified copies (`cache_dir`, by default under the system temp
folder), hashed, and renamed into place; later calls reuse the copy while it hashes to its name.
Work folders and locks live in that local store too; `gc` empties its copies.

Generating a node once: `node_lock` takes the local store's flock, so the processes of one
machine contend for a node one at a time, then the node's lease in the bucket, so machines do
(cache.gcs_lease: created only if absent, renewed while the work runs, taken over once its
holder stops renewing it). A machine that waits on a lease returns as soon as the node's record
appears, and the caller's re-lookup reuses it. Should two machines still both generate a node
(a holder cut off from the bucket for longer than the TTL, its lease taken over), the second
write does no harm: the same bytes make the same blob, which already exists (a 412 on create is
success), and the index entry is last-writer-wins with an equivalent record. A provider that
returns different bytes each time leaves both blobs stored; the index names the later one, and
each run's manifest the one it used.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import google_crc32c
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from cache.keys import bytes_digest, file_digest
from cache.store import Artifact, ArtifactStore, BaseArtifactStore, KeptManifest, NodeRecord
from cache.gcs_client import TIMEOUT_S, GcsTarget, failures_as, object_uri, storage_client
from cache.gcs_lease import node_lease


class GcsStoreError(RuntimeError):
    """A request to the bucket failed, or it holds bad bytes; the message names the object."""


class GcsArtifactStore(BaseArtifactStore):
    def __init__(self, location: str, *, client: storage.Client | None = None,
                 cache_dir: Path | None = None):
        target = GcsTarget.parse(location)
        self.root = f"gs://{target.bucket}/{target.prefix}".rstrip("/")
        self.target = target
        self.client = client or storage_client(None)
        self.bucket = self.client.bucket(target.bucket)
        self.local = ArtifactStore(cache_dir or default_cache_dir(target))

    def close(self) -> None:
        self.local.close()

    # Blobs ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes, media_type: str) -> Artifact:
        return self._upload(self.local.put_bytes(data, media_type))

    def put_file(self, source: Path, media_type: str) -> Artifact:
        return self._upload(self.local.put_file(source, media_type))

    def verify(self, artifact: Artifact) -> bool:
        return _intact(self._stat(self._blob(artifact.digest)), artifact)

    def blob_path(self, digest: str) -> Path:
        path = self.local.blob_path(digest)
        if path.is_file() and file_digest(path) == digest:
            return path
        blob = self._blob(digest)
        with self.local.work_dir() as scratch:
            download = scratch / digest
            with failures_as(GcsStoreError, "download", object_uri(blob)):
                blob.download_to_filename(str(download), timeout=TIMEOUT_S)
            if file_digest(download) != digest:
                raise GcsStoreError(f"{object_uri(blob)} does not hash to its name: the stored blob is "
                                    "corrupt; `reelflow cache verify` lists such blobs")
            self.local.put_file(download, "application/octet-stream")
        return path

    def work_dir(self):
        """A scratch folder on this machine, removed afterwards whatever happens."""
        return self.local.work_dir()

    def log_folder(self) -> Path:
        return self.local.log_folder()

    @contextmanager
    def node_lock(self, key: str, lease_seconds: float) -> Iterator[None]:
        """One generation of `key` at a time, on this machine and across machines (see the
        module docstring); returns without the lease once another machine stored the node."""
        with self.local.node_lock(key, lease_seconds), \
                node_lease(self.bucket, self.target.object_name("leases", key), lease_seconds,
                           made=lambda: self.lookup(key) is not None):
            yield

    def _guard_file(self) -> Path:
        # Renders and gc meet on this machine only: run `cache gc` where no render runs.
        return self.local._guard_file()

    def _upload(self, artifact: Artifact) -> Artifact:
        """Create the blob from this machine's verified copy, unless the bucket holds it already.
        A corrupt object is replaced, but only the generation we looked at."""
        blob = self._blob(artifact.digest)
        found = self._stat(blob)
        if _intact(found, artifact):
            return artifact
        path = self.local.blob_path(artifact.digest)
        blob.metadata = {"sha256": artifact.digest, "crc32c": _crc32c(path)}
        try:
            with failures_as(GcsStoreError, "upload", object_uri(blob)):
                blob.upload_from_filename(str(path), content_type=artifact.media_type,
                                          if_generation_match=found.generation if found else 0,
                                          timeout=TIMEOUT_S)
        except PreconditionFailed:
            # Written since we looked: by another machine storing the same bytes, or by an
            # attempt of ours whose reply was lost and which the client retried.
            if not self.verify(artifact):
                raise GcsStoreError(f"{object_uri(blob)} changed while storing it; run again") from None
        return artifact

    # Index and kept manifests --------------------------------------------------------

    def record(self, record: NodeRecord) -> None:
        self._write_json(self._object("index", f"{record.key}.json"), record.model_dump_json())

    def keep_manifest(self, name: str, manifest: dict) -> None:
        """Remember a published manifest so `gc` keeps every node and blob it references."""
        self._write_json(self._object("kept", f"{name}.json"),
                         json.dumps(manifest, indent=2, sort_keys=True))

    def kept_manifests(self) -> list[str]:
        return sorted(name for name, _ in self._listing("kept", ".json"))

    def _load_record(self, key: str) -> str | None:
        data = self._read(self._object("index", f"{key}.json"))
        return None if data is None else data.decode()

    def _record_keys(self) -> list[str]:
        return [key for key, _ in self._listing("index", ".json")]

    def _forget_record(self, key: str) -> None:
        self._delete(self._object("index", f"{key}.json"))
        (self.local.locks / key).unlink(missing_ok=True)

    def _save_job(self, key: str, text: str) -> None:
        self._write_json(self._object("jobs", f"{key}.json"), text)

    def _load_job(self, key: str) -> str | None:
        data = self._read(self._object("jobs", f"{key}.json"))
        return None if data is None else data.decode()

    def _drop_job(self, key: str) -> None:
        self._delete(self._object("jobs", f"{key}.json"))

    def _kept(self) -> list[KeptManifest]:
        kept = []
        for name, blob in self._listing("kept", ".json"):
            data = self._read(blob)
            if data is not None:  # gone since the listing: another gc expired it
                kept.append(KeptManifest(name, blob.updated.timestamp(), json.loads(data)))
        return kept

    def _drop_kept(self, name: str) -> None:
        self._delete(self._object("kept", f"{name}.json"))

    # Maintenance ---------------------------------------------------------------------

    def _blob_sizes(self) -> dict[str, int]:
        return {digest: blob.size for digest, blob in self._listing("blobs")}

    def _corrupt_blobs(self) -> list[str]:
        """Judged by metadata and GCS's own crc32c of the bytes it holds: nothing is downloaded."""
        return [digest for digest, blob in self._listing("blobs") if not _holds(blob, digest)]

    def _delete_blob(self, digest: str) -> None:
        self._delete(self._blob(digest))

    def _tidy(self) -> None:
        """The local copies are a cache: empty it (blobs are downloaded again when needed)."""
        self.local._collect()  # gc already holds this machine's guard

    # Requests: each with a timeout, each failure one GcsStoreError naming the object ----

    def _object(self, folder: str, file: str) -> storage.Blob:
        return self.bucket.blob(self.target.object_name(folder, file))

    def _blob(self, digest: str) -> storage.Blob:
        return self._object("blobs", digest)

    def _stat(self, blob: storage.Blob) -> storage.Blob | None:
        with failures_as(GcsStoreError, "read metadata of", object_uri(blob)):
            return self.bucket.get_blob(blob.name, timeout=TIMEOUT_S)

    def _read(self, blob: storage.Blob) -> bytes | None:
        with failures_as(GcsStoreError, "download", object_uri(blob)):
            try:
                return blob.download_as_bytes(timeout=TIMEOUT_S)
            except NotFound:
                return None

    def _write_json(self, blob: storage.Blob, text: str) -> None:
        # Unconditional (last writer wins) and retried: writing the same entry twice is harmless.
        with failures_as(GcsStoreError, "upload", object_uri(blob)):
            blob.upload_from_string(text, content_type="application/json", timeout=TIMEOUT_S,
                                    retry=DEFAULT_RETRY)

    def _delete(self, blob: storage.Blob) -> None:
        with failures_as(GcsStoreError, "delete", object_uri(blob)):
            try:
                blob.delete(timeout=TIMEOUT_S)
            except NotFound:
                pass

    def _listing(self, folder: str, suffix: str = "") -> Iterator[tuple[str, storage.Blob]]:
        """(name under `folder` without `suffix`, object) for every object in `folder`."""
        prefix = self.target.object_name(folder, "") + "/"
        with failures_as(GcsStoreError, "list", f"gs://{self.bucket.name}/{prefix}"):
            blobs = list(self.client.list_blobs(self.bucket, prefix=prefix, timeout=TIMEOUT_S))
        for blob in blobs:
            name = blob.name[len(prefix):]
            if name.endswith(suffix):
                yield name.removesuffix(suffix) if suffix else name, blob


def default_cache_dir(target: GcsTarget) -> Path:
    """Where this machine keeps verified copies: one folder per bucket and prefix."""
    prefix = bytes_digest(target.prefix.encode())[:16]
    return Path(tempfile.gettempdir()) / "reelflow-gcs-cache" / target.bucket / prefix


def _intact(found: storage.Blob | None, artifact: Artifact) -> bool:
    return found is not None and found.size == artifact.size and _holds(found, artifact.digest)


def _holds(found: storage.Blob, digest: str) -> bool:
    """The object was written by this store for `digest`, and still holds the bytes it wrote."""
    metadata = found.metadata or {}
    return (metadata.get("sha256") == digest and found.crc32c is not None
            and metadata.get("crc32c") == found.crc32c)


def _crc32c(path: Path) -> str:
    """As GCS reports it: base64 of the big-endian checksum."""
    checksum = google_crc32c.Checksum()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode()
