"""The artifact store: blobs by the sha256 of their bytes, and an index from node key to record.

Layout under the root:
  blobs/ab/abcdef…   immutable, content-addressed; written to tmp/ and renamed in
  index/             diskcache: node key → NodeRecord (which blobs a node produced)
  kept/              manifests of published videos; `gc` keeps what they reference
  locks/             one lock file per node key: one generation at a time, across processes
  jobs/              provider jobs submitted and not yet stored, by node key (tasks/jobs.py)
  tmp/               partial writes; never read as a result
  logs/              each command's full log (Prefect's, with tracebacks), named by its time

A blob is renamed into place only once it is complete, and an index entry is written only
after its blobs are in place, so a crash at any point leaves nothing that counts as a hit.
A hit re-hashes the blobs it returns: missing or corrupt bytes are a miss, never a result.

`BaseArtifactStore` holds what a store means (a verified hit, what `gc` keeps, what
`verify_all` reports); `ArtifactStore` is the local folder, `cache.bucket_store` a bucket.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import diskcache
from pydantic import BaseModel, Field

from cache.keys import bytes_digest, file_digest

TMP_MAX_AGE_SECONDS = 3600


class Artifact(BaseModel):
    """A reference to one stored blob: small enough to pass between tasks."""

    digest: str
    media_type: str
    size: int


class NodeRecord(BaseModel):
    """What the index remembers about one generated node."""

    key: str
    kind: str
    provider: str
    model: str
    parts: dict  # the decoded key: kind, versions, params and input digests
    outputs: dict[str, Artifact]
    usage: dict[str, float] = Field(default_factory=dict)
    cost_usd: float = 0.0
    seconds: float = 0.0
    created_at: float = Field(default_factory=time.time)


@dataclass
class StoreStats:
    nodes: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    kept_manifests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass
class GcReport:
    removed_nodes: int = 0
    removed_blobs: int = 0
    freed_bytes: int = 0
    expired_manifests: int = 0
    kept_bytes: int = 0  # the blobs left


@dataclass(frozen=True)
class KeptManifest:
    name: str
    saved_at: float  # seconds since the epoch, renewed by each publish; `gc` expires by it
    manifest: dict

    @property
    def video(self) -> str | None:
        """The video this is a version of (None: a manifest from before histories)."""
        return self.manifest.get("video")

    def node_keys(self) -> set[str]:
        """The nodes it was made of, and its shots' other attempts and gates."""
        keys = set()
        for node in self.manifest.get("nodes", []):
            keys.update([node["key"]] if node.get("key") else [])
            review = node.get("review") or {}
            keys.update(key for attempt in review.get("attempts", [])
                        for key in (attempt["key"], attempt["gate_key"]) if key)
            keys.update([review["approval_key"]] if review.get("approval_key") else [])
        return keys

    def digests(self) -> set[str]:
        return {digest for node in self.manifest.get("nodes", [])
                for digest in node.get("outputs", {}).values()}


def _by_version(manifests: list[KeptManifest]) -> tuple[list[KeptManifest],
                                                        list[tuple[KeptManifest, float]]]:
    """The latest version of each video (and every manifest of no video), and the earlier
    versions, each with when the next version replaced it."""
    videos: dict[str, list[KeptManifest]] = {}
    latest = []
    for manifest in manifests:
        if manifest.video is None:
            latest.append(manifest)
        else:
            videos.setdefault(manifest.video, []).append(manifest)
    earlier = []
    for versions in videos.values():
        versions.sort(key=lambda kept: (kept.manifest.get("version") or 0, kept.saved_at))
        latest.append(versions[-1])
        earlier += [(manifest, following.saved_at)
                    for manifest, following in zip(versions, versions[1:])]
    return latest, earlier


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class BaseArtifactStore(ABC):
    """What a store means, whichever backend holds the bytes: a hit is a record whose blobs all
    verify, `verify_all` reports corrupt blobs and lost outputs, `gc` keeps what kept manifests
    reference. A backend implements the abstract methods: the public ones, and the private
    primitives that this shared policy is written with."""

    root: Path | str  # where the store is, as the user named it

    @abstractmethod
    def blob_path(self, digest: str) -> Path:
        """A local file holding the blob's bytes (ffmpeg and providers read files)."""

    @abstractmethod
    def put_bytes(self, data: bytes, media_type: str) -> Artifact: ...

    @abstractmethod
    def put_file(self, source: Path, media_type: str) -> Artifact: ...

    @abstractmethod
    def verify(self, artifact: Artifact) -> bool:
        """The blob is stored and its bytes are the ones its digest names."""

    @abstractmethod
    def work_dir(self): ...

    @abstractmethod
    def log_folder(self) -> Path:
        """Where commands keep their full logs, on this machine."""

    @abstractmethod
    def node_lock(self, key: str, lease_seconds: float):
        """Held while generating `key`, so it is generated once. A store shared between
        machines claims it with a lease that another machine takes over after `lease_seconds`
        without renewal."""

    @abstractmethod
    def record(self, record: NodeRecord) -> None:
        """Index `record`; only call it once every blob it names is stored."""

    @abstractmethod
    def keep_manifest(self, name: str, manifest: dict) -> None: ...

    @abstractmethod
    def kept_manifests(self) -> list: ...

    def versions_of(self, video: str) -> list[dict]:
        """The kept manifests of a video's published versions (tasks/history.py)."""
        return [kept.manifest for kept in self._kept() if kept.video == video]

    @abstractmethod
    def _load_record(self, key: str) -> str | None:
        """The record's JSON, or None."""

    @abstractmethod
    def _save_job(self, key: str, text: str) -> None: ...

    @abstractmethod
    def _load_job(self, key: str) -> str | None: ...

    @abstractmethod
    def _drop_job(self, key: str) -> None: ...

    @abstractmethod
    def _record_keys(self) -> list[str]: ...

    @abstractmethod
    def _forget_record(self, key: str) -> None: ...

    @abstractmethod
    def _blob_sizes(self) -> dict[str, int]:
        """Every stored blob: digest → size."""

    @abstractmethod
    def _corrupt_blobs(self) -> list[str]:
        """Digests of stored blobs whose bytes are not the ones their name says."""

    @abstractmethod
    def _delete_blob(self, digest: str) -> None: ...

    @abstractmethod
    def _kept(self) -> list[KeptManifest]: ...

    @abstractmethod
    def _drop_kept(self, name: str) -> None: ...

    @abstractmethod
    def _tidy(self) -> None:
        """Remove what interrupted writes left behind."""

    # What every store means ------------------------------------------------------------

    def read_bytes(self, artifact: Artifact) -> bytes:
        return self.blob_path(artifact.digest).read_bytes()

    def lookup(self, key: str) -> NodeRecord | None:
        """The record for `key` if every blob it names is present and intact."""
        raw = self._load_record(key)
        if raw is None:
            return None
        record = NodeRecord.model_validate_json(raw)
        if all(self.verify(artifact) for artifact in record.outputs.values()):
            return record
        return None

    def remember_job(self, key: str, job: dict) -> None:
        """Keep a provider job submitted for node `key` until its result is stored: a run that
        dies while polling leaves it for the next run to resume, not to pay for again."""
        self._save_job(key, json.dumps(job, sort_keys=True))

    def pending_job(self, key: str) -> dict | None:
        raw = self._load_job(key)
        return None if raw is None else json.loads(raw)

    def forget_job(self, key: str) -> None:
        self._drop_job(key)

    def forget(self, key: str) -> None:
        """Drop a node's record: the next render makes it again (its blobs go at `gc`)."""
        self._forget_record(key)

    def records(self) -> Iterator[NodeRecord]:
        for key in self._record_keys():
            raw = self._load_record(key)
            if raw is not None:
                yield NodeRecord.model_validate_json(raw)

    def stats(self) -> StoreStats:
        stats = StoreStats(kept_manifests=len(self.kept_manifests()))
        for record in self.records():
            stats.nodes += 1
            stats.by_kind[record.kind] = stats.by_kind.get(record.kind, 0) + 1
        sizes = self._blob_sizes()
        stats.blobs, stats.blob_bytes = len(sizes), sum(sizes.values())
        return stats

    def verify_all(self) -> list[str]:
        """Problems found: corrupt or stray blobs, and index entries whose blobs are gone."""
        problems = [f"corrupt blob {digest}" for digest in self._corrupt_blobs()]
        stored = self._blob_sizes()
        for record in self.records():
            for name, artifact in record.outputs.items():
                if artifact.digest not in stored:
                    problems.append(f"node {record.key[:12]} ({record.kind}) lost its {name}")
        return problems

    @abstractmethod
    def _guard_file(self) -> Path:
        """The lock file renders share and `gc` takes alone (on this machine)."""

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Held by every render while it runs: `gc` waits until no render holds it, so it never
        removes a node a running render made but has not published yet. The OS frees it if
        the process dies."""
        with _flock(self._guard_file(), fcntl.LOCK_SH):
            yield

    def gc(self, older_than_days: float | None = None, max_bytes: int | None = None,
           history_days: float | None = None) -> GcReport:
        """Remove nodes and blobs no kept manifest references, once no render is running.

        Kept manifests expire first: with `older_than_days`, those saved longer ago; with
        `max_bytes`, all but the most recently published videos whose blobs fit in that size.
        The earlier versions of a video (tasks/history.py) are kept while its latest is, within
        `max_bytes`, and with `history_days` only those replaced less than that many days ago.
        What only expired manifests referenced goes too.
        """
        with _flock(self._guard_file(), fcntl.LOCK_EX):
            return self._collect(older_than_days, max_bytes, history_days)

    def _collect(self, older_than_days: float | None = None, max_bytes: int | None = None,
                 history_days: float | None = None) -> GcReport:
        report = GcReport()
        records = {record.key: record for record in self.records()}
        sizes = self._blob_sizes()

        def blobs_of(manifest: KeptManifest) -> set[str]:
            return manifest.digests().union(
                artifact.digest for key in manifest.node_keys() if key in records
                for artifact in records[key].outputs.values())

        latest, earlier = _by_version(self._kept())
        kept, keep_digests, keeping = [], set(), True
        now = time.time()
        cutoff = None if older_than_days is None else now - older_than_days * 86400
        # Newest first; once one expires every older one does, so an older video is never
        # kept in place of a newer one.
        for manifest in sorted(latest, key=lambda kept: kept.saved_at, reverse=True):
            needed = keep_digests | blobs_of(manifest)
            keeping = (keeping and (cutoff is None or manifest.saved_at >= cutoff)
                       and (max_bytes is None or sum(sizes.get(d, 0) for d in needed) <= max_bytes))
            if keeping:
                kept.append(manifest)
                keep_digests = needed
            else:
                self._drop_kept(manifest.name)
                report.expired_manifests += 1
        videos = {manifest.video for manifest in kept}
        history_cutoff = None if history_days is None else now - history_days * 86400
        # Then the earlier versions of the videos kept, most recently replaced first, within
        # the same size.
        for manifest, replaced_at in sorted(earlier, reverse=True, key=lambda pair: (
                pair[1], pair[0].manifest.get("version") or 0)):
            needed = keep_digests | blobs_of(manifest)
            if (manifest.video in videos
                    and (history_cutoff is None or replaced_at > history_cutoff)
                    and (max_bytes is None or sum(sizes.get(d, 0) for d in needed) <= max_bytes)):
                kept.append(manifest)
                keep_digests = needed
            else:
                self._drop_kept(manifest.name)
                report.expired_manifests += 1
        keep_keys = set().union(*(manifest.node_keys() for manifest in kept))
        for key in records:
            if key not in keep_keys:
                self._forget_record(key)
                report.removed_nodes += 1
        for digest, size in sizes.items():
            if digest in keep_digests:
                report.kept_bytes += size
            else:
                report.freed_bytes += size
                self._delete_blob(digest)
                report.removed_blobs += 1
        self._tidy()
        return report


class ArtifactStore(BaseArtifactStore):
    def __init__(self, root: Path):
        self.root = Path(root).expanduser()
        self.blobs = self.root / "blobs"
        self.kept = self.root / "kept"
        self.locks = self.root / "locks"
        self.jobs = self.root / "jobs"
        self.tmp = self.root / "tmp"
        for folder in (self.blobs, self.kept, self.locks, self.jobs, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
        self.index = diskcache.Cache(str(self.root / "index"))

    def close(self) -> None:
        self.index.close()

    # Blobs ---------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest

    def put_bytes(self, data: bytes, media_type: str) -> Artifact:
        digest = bytes_digest(data)
        target = self.blob_path(digest)
        if not self._blob_intact(target, digest):
            with self._temp_file() as (handle, temp):
                handle.write(data)
                self._commit_blob(handle, temp, target)
        return Artifact(digest=digest, media_type=media_type, size=len(data))

    def put_file(self, source: Path, media_type: str) -> Artifact:
        digest = file_digest(source)
        target = self.blob_path(digest)
        if not self._blob_intact(target, digest):
            with self._temp_file() as (handle, temp), open(source, "rb") as reader:
                shutil.copyfileobj(reader, handle, 1 << 20)
                self._commit_blob(handle, temp, target)
        return Artifact(digest=digest, media_type=media_type, size=source.stat().st_size)

    def verify(self, artifact: Artifact) -> bool:
        return self._blob_intact(self.blob_path(artifact.digest), artifact.digest)

    @staticmethod
    def _blob_intact(path: Path, digest: str) -> bool:
        return path.is_file() and file_digest(path) == digest

    @contextmanager
    def _temp_file(self):
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, temp
        finally:
            temp.unlink(missing_ok=True)

    @staticmethod
    def _commit_blob(handle, temp: Path, target: Path) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        target.parent.mkdir(exist_ok=True)
        os.chmod(temp, 0o444)
        os.replace(temp, target)

    def log_folder(self) -> Path:
        return self.root / "logs"

    @contextmanager
    def work_dir(self) -> Iterator[Path]:
        """A scratch folder on the store's filesystem, removed afterwards whatever happens."""
        path = Path(tempfile.mkdtemp(dir=self.tmp, prefix="work-"))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    # Index ---------------------------------------------------------------------------

    # retry: many threads write the index at once; a write that waited out SQLite's lock
    # timeout tries again rather than failing a node its provider was already paid for.
    def record(self, record: NodeRecord) -> None:
        self.index.set(record.key, record.model_dump_json(), retry=True)

    def _load_record(self, key: str) -> str | None:
        return self.index.get(key)

    def _record_keys(self) -> list[str]:
        return list(self.index.iterkeys())

    def _forget_record(self, key: str) -> None:
        self.index.delete(key, retry=True)
        (self.locks / key).unlink(missing_ok=True)

    def _save_job(self, key: str, text: str) -> None:
        fd, temp = tempfile.mkstemp(dir=self.tmp, prefix="job-")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())  # a job id lost to a crash is a job paid twice
        os.replace(temp, self.jobs / f"{key}.json")

    def _load_job(self, key: str) -> str | None:
        try:
            return (self.jobs / f"{key}.json").read_text()
        except FileNotFoundError:
            return None

    def _drop_job(self, key: str) -> None:
        (self.jobs / f"{key}.json").unlink(missing_ok=True)

    @contextmanager
    def node_lock(self, key: str, lease_seconds: float) -> Iterator[None]:
        """Hold the generation lock of one node. The OS frees it if the process dies, so it
        needs no lease."""
        with _flock(self.locks / key, fcntl.LOCK_EX):
            yield

    def _guard_file(self) -> Path:
        return self.root / "gc.lock"

    # Kept manifests ------------------------------------------------------------------

    def keep_manifest(self, name: str, manifest: dict) -> None:
        """Remember a published manifest so `gc` keeps every node and blob it references."""
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        fd, temp = tempfile.mkstemp(dir=self.tmp, prefix="kept-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, self.kept / f"{name}.json")

    def kept_manifests(self) -> list[Path]:
        return sorted(self.kept.glob("*.json"))

    def _kept(self) -> list[KeptManifest]:
        return [KeptManifest(path.stem, path.stat().st_mtime, json.loads(path.read_text()))
                for path in self.kept_manifests()]

    def _drop_kept(self, name: str) -> None:
        (self.kept / f"{name}.json").unlink(missing_ok=True)

    # Maintenance ---------------------------------------------------------------------

    def _all_blobs(self) -> Iterator[Path]:
        return (path for path in self.blobs.glob("??/*") if path.is_file())

    def _blob_sizes(self) -> dict[str, int]:
        return {blob.name: blob.stat().st_size for blob in self._all_blobs()}

    def _corrupt_blobs(self) -> list[str]:
        return [blob.name for blob in self._all_blobs() if file_digest(blob) != blob.name]

    def _delete_blob(self, digest: str) -> None:
        self.blob_path(digest).unlink(missing_ok=True)

    def _tidy(self) -> None:
        """Remove temp files and work folders older than TMP_MAX_AGE_SECONDS."""
        cutoff = time.time() - TMP_MAX_AGE_SECONDS
        for path in self.tmp.iterdir():
            if path.stat().st_mtime >= cutoff:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
