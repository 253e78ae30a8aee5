"""The artifact store in a bucket, shared by every machine of a cluster: gs://BUCKET/PREFIX or
s3://BUCKET/PREFIX, one store over either service (cache.buckets).

Layout under the prefix:
  blobs/<digest>         the bytes, with their content type; metadata `sha256` (= the name) and
                         the service's checksum of the bytes as uploaded (`crc32c` on GCS,
                         `checksum-sha256` on S3); created only if absent
  index/<node key>.json  the NodeRecord, written only after every blob it names exists
  kept/<name>.json       manifests of published videos; `gc` keeps what they reference
  jobs/<node key>.json   provider jobs submitted and not yet stored (tasks/jobs.py)
  leases/<node key>      which machine is generating the node now (cache.leases)

An object appears only once its upload is complete, so a crash leaves nothing that counts as a
hit. A hit needs every blob to exist with the size, sha256 and crc32c recorded when it was
written. The service computes an object's checksum from the bytes it holds, so bytes damaged on
the way, or an object overwritten with other bytes (even with its metadata copied along), no
longer match.

`blob_path` returns a local file (ffmpeg and providers read files): the blob is downloaded once
into a local ArtifactStore of verified copies (`cache_dir`, by default under the system temp
folder), hashed, and renamed into place; later calls reuse the copy while it hashes to its name.
Work folders and locks live in that local store too; `gc` empties its copies.

Generating a node once: `node_lock` takes the local store's flock, so the processes of one
machine contend for a node one at a time, then the node's lease in the bucket, so machines do
(cache.leases: created only if absent, renewed while the work runs, taken over once its
holder stops renewing it). A machine that waits on a lease returns as soon as the node's record
appears, and the caller's re-lookup reuses it. Should two machines still both generate a node
(a holder cut off from the bucket for longer than the TTL, its lease taken over), the second
write does no harm: the same bytes make the same blob, which already exists (a 412 on create is
success), and the index entry is last-writer-wins with an equivalent record. A provider that
returns different bytes each time leaves both blobs stored; the index names the later one, and
each run's manifest the one it used.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cache.buckets import ABSENT, Bucket, BucketError, BucketTarget, Conflict, ObjectStat
from cache.keys import bytes_digest, file_digest
from cache.leases import node_lease
from cache.store import Artifact, ArtifactStore, BaseArtifactStore, KeptManifest, NodeRecord


class BucketArtifactStore(BaseArtifactStore):
    def __init__(self, bucket: Bucket, *, cache_dir: Path | None = None):
        self.bucket = bucket
        self.target = bucket.target
        self.root = str(self.target)
        self.local = ArtifactStore(cache_dir or default_cache_dir(self.target))

    def close(self) -> None:
        self.local.close()

    # Blobs ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes, media_type: str) -> Artifact:
        return self._upload(self.local.put_bytes(data, media_type))

    def put_file(self, source: Path, media_type: str) -> Artifact:
        return self._upload(self.local.put_file(source, media_type))

    def verify(self, artifact: Artifact) -> bool:
        return self._intact(self.bucket.stat(self._blob(artifact.digest)), artifact)

    def blob_path(self, digest: str) -> Path:
        path = self.local.blob_path(digest)
        if path.is_file() and file_digest(path) == digest:
            return path
        with self.local.work_dir() as scratch:
            download = scratch / digest
            self.bucket.download(self._blob(digest), download)
            if file_digest(download) != digest:
                raise BucketError(f"{self.bucket.uri(self._blob(digest))} does not hash to its "
                                  "name: the stored blob is corrupt; `reelflow cache verify` "
                                  "lists such blobs")
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
        A corrupt object is replaced, but only the version we looked at."""
        name = self._blob(artifact.digest)
        found = self.bucket.stat(name)
        if self._intact(found, artifact):
            return artifact
        path = self.local.blob_path(artifact.digest)
        metadata = {"sha256": artifact.digest, self.bucket.checksum_key: self.bucket.checksum(path)}
        try:
            self.bucket.write(name, path, content_type=artifact.media_type, metadata=metadata,
                              expect=found.version if found else ABSENT)
        except Conflict:
            # Written since we looked: by another machine storing the same bytes, or by an
            # attempt of ours whose reply was lost and which the client retried.
            if not self.verify(artifact):
                raise BucketError(f"{self.bucket.uri(name)} changed while storing it; "
                                  "run again") from None
        return artifact

    def _intact(self, found: ObjectStat | None, artifact: Artifact) -> bool:
        return found is not None and found.size == artifact.size and self._holds(found,
                                                                                artifact.digest)

    def _holds(self, found: ObjectStat, digest: str) -> bool:
        """The object was written by this store for `digest`, and still holds the bytes it
        wrote."""
        return (found.metadata.get("sha256") == digest and found.checksum is not None
                and found.metadata.get(self.bucket.checksum_key) == found.checksum)

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
        return self._read_text(self._object("index", f"{key}.json"))

    def _record_keys(self) -> list[str]:
        return [key for key, _ in self._listing("index", ".json")]

    def _forget_record(self, key: str) -> None:
        self.bucket.delete(self._object("index", f"{key}.json"))
        (self.local.locks / key).unlink(missing_ok=True)

    def _save_job(self, key: str, text: str) -> None:
        self._write_json(self._object("jobs", f"{key}.json"), text)

    def _load_job(self, key: str) -> str | None:
        return self._read_text(self._object("jobs", f"{key}.json"))

    def _drop_job(self, key: str) -> None:
        self.bucket.delete(self._object("jobs", f"{key}.json"))

    def _kept(self) -> list[KeptManifest]:
        kept = []
        for name, found in self._listing("kept", ".json"):
            text = self._read_text(found.name)
            if text is not None:  # gone since the listing: another gc expired it
                kept.append(KeptManifest(name, found.updated, json.loads(text)))
        return kept

    def _drop_kept(self, name: str) -> None:
        self.bucket.delete(self._object("kept", f"{name}.json"))

    # Maintenance ---------------------------------------------------------------------

    def _blob_sizes(self) -> dict[str, int]:
        return {digest: found.size for digest, found in self._listing("blobs")}

    def _corrupt_blobs(self) -> list[str]:
        """Judged by metadata and the service's own checksum of the bytes it holds: nothing is
        downloaded."""
        return [digest for digest, found in self._listing("blobs", full=True)
                if not self._holds(found, digest)]

    def _delete_blob(self, digest: str) -> None:
        self.bucket.delete(self._blob(digest))

    def _tidy(self) -> None:
        """The local copies are a cache: empty it (blobs are downloaded again when needed)."""
        self.local._collect()  # gc already holds this machine's guard

    # Names ---------------------------------------------------------------------------

    def _object(self, folder: str, file: str) -> str:
        return self.target.object_name(folder, file)

    def _blob(self, digest: str) -> str:
        return self._object("blobs", digest)

    def _read_text(self, name: str) -> str | None:
        data = self.bucket.read(name)
        return None if data is None else data.decode()

    def _write_json(self, name: str, text: str) -> None:
        # Unconditional (last writer wins): writing the same entry twice is harmless.
        self.bucket.write(name, text.encode(), content_type="application/json")

    def _listing(self, folder: str, suffix: str = "", *, full: bool = False,
                 ) -> Iterator[tuple[str, ObjectStat]]:
        """(name under `folder` without `suffix`, object) for every object in `folder`."""
        prefix = self._object(folder, "") + "/"
        for found in self.bucket.list(self._object(folder, ""), full=full):
            name = found.name[len(prefix):]
            if name.endswith(suffix):
                yield name.removesuffix(suffix) if suffix else name, found


def default_cache_dir(target: BucketTarget) -> Path:
    """Where this machine keeps verified copies: one folder per bucket and prefix."""
    prefix = bytes_digest(target.prefix.encode())[:16]
    return (Path(tempfile.gettempdir()) / "reelflow-bucket-cache" / target.scheme / target.bucket
            / prefix)
