"""The artifact store: content-addressed blobs, verified hits, atomic writes, one generation.

The contract tests take a `backend` and run against each store: the local folder, and a bucket
(`BucketArtifactStore`) on GCS (gcp-storage-emulator) and on S3 (moto's S3 server), both in
this process on 127.0.0.1. The rest test the local folder's own machinery.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cache.bucket_store import BucketArtifactStore
from cache.buckets import BucketTarget
from cache.gcs_bucket import GcsBucket
from cache.s3_bucket import S3Bucket
from cache.keys import bytes_digest
from cache.store import ArtifactStore, BaseArtifactStore, NodeRecord
from tests.fakes.gcs import storage_emulator
from tests.fakes.s3 import S3Fake, s3_fake, use_s3


@dataclass
class Backend:
    store: BaseArtifactStore
    reopen: Callable[[], BaseArtifactStore]  # the same store, as another process opens it
    corrupt: Callable[[str], None]  # the blob's bytes replaced by others, its name kept
    lose: Callable[[str], None]  # the blob deleted


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with storage_emulator() as url:
        yield url


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Fake]:
    with s3_fake() as fake:
        yield fake


@pytest.fixture(params=["local", "gcs", "s3"])
def backend(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "local":
        store = ArtifactStore(tmp_path / "store")

        def corrupt(digest: str) -> None:
            path = store.blob_path(digest)
            path.chmod(0o644)
            path.write_bytes(path.read_bytes()[:-1])  # truncated, as a crash could leave it

        return Backend(store, functools.partial(ArtifactStore, tmp_path / "store"), corrupt,
                       lambda digest: store.blob_path(digest).unlink())
    if request.param == "s3":
        fake = request.getfixturevalue("s3")
        use_s3(monkeypatch, fake)
        name, client = fake.new_bucket("reelflow-store"), fake.client()
        target = BucketTarget.parse(f"s3://{name}/cache")
        reopen = functools.partial(_bucket_store, functools.partial(
            S3Bucket, target, endpoint_url=fake.endpoint, addressing_style="path"), tmp_path)
        return Backend(reopen(), reopen,
                       lambda digest: client.put_object(Bucket=name, Key=f"cache/blobs/{digest}",
                                                        Body=b"x"),
                       lambda digest: client.delete_object(Bucket=name, Key=f"cache/blobs/{digest}"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", request.getfixturevalue("emulator"))
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"reelflow-store-{uuid.uuid4().hex[:12]}")
    target = BucketTarget.parse(f"gs://{bucket.name}/cache")
    reopen = functools.partial(_bucket_store, functools.partial(GcsBucket, target), tmp_path)
    return Backend(reopen(), reopen,
                   lambda digest: bucket.blob(f"cache/blobs/{digest}").upload_from_string(b"x"),
                   lambda digest: bucket.blob(f"cache/blobs/{digest}").delete())


def _bucket_store(bucket: Callable, tmp_path: Path) -> BucketArtifactStore:
    """The store as another process opens it: its own client, the same folder of copies."""
    return BucketArtifactStore(bucket(), cache_dir=tmp_path / "bucket-cache")


def _record(store: BaseArtifactStore, key: str, data: bytes, kind: str = "tts") -> NodeRecord:
    artifact = store.put_bytes(data, "application/octet-stream")
    record = NodeRecord(key=key, kind=kind, provider="p", model="m", parts={}, outputs={"out": artifact})
    store.record(record)
    return record


def test_blobs_are_named_by_the_sha256_of_their_bytes(backend):
    artifact = backend.store.put_bytes(b"hello", "text/plain")
    assert artifact.digest == bytes_digest(b"hello")
    assert backend.store.blob_path(artifact.digest).read_bytes() == b"hello"


def test_identical_bytes_are_stored_once(backend, tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(b"same")
    first, second = backend.store.put_bytes(b"same", "x"), backend.store.put_file(source, "x")
    assert first.digest == second.digest
    assert backend.store.stats().blobs == 1


def test_lookup_returns_a_recorded_node(backend):
    record = _record(backend.store, "k1", b"data")
    assert backend.store.lookup("k1") == record
    assert backend.reopen().lookup("k1") == record
    assert backend.store.lookup("other") is None


def test_a_corrupt_blob_is_a_miss_and_verify_reports_it(backend):
    record = _record(backend.store, "k1", b"data")
    backend.corrupt(record.outputs["out"].digest)
    assert backend.store.lookup("k1") is None
    assert any("corrupt" in problem for problem in backend.store.verify_all())


def test_a_missing_blob_is_a_miss_and_verify_reports_it(backend):
    record = _record(backend.store, "k1", b"data")
    backend.lose(record.outputs["out"].digest)
    assert backend.store.lookup("k1") is None
    assert any("lost" in problem for problem in backend.store.verify_all())


def test_a_miss_is_repaired_by_storing_the_bytes_again(backend):
    record = _record(backend.store, "k1", b"data")
    backend.corrupt(record.outputs["out"].digest)
    assert _record(backend.store, "k1", b"data").outputs == record.outputs
    assert backend.store.lookup("k1") is not None
    assert backend.store.verify_all() == []


def _write_forever(root: str, ready) -> None:
    store = ArtifactStore(Path(root))
    big = os.urandom(1 << 20)
    ready.set()
    while True:
        store.put_bytes(big + os.urandom(16), "x")


def test_a_writer_killed_mid_write_leaves_no_blob_that_counts(tmp_path):
    ready = multiprocessing.Event()
    writer = multiprocessing.Process(target=_write_forever, args=(str(tmp_path), ready))
    writer.start()
    ready.wait(60)
    store = ArtifactStore(tmp_path)
    # Wait until the writer has committed something, then kill it wherever it is.
    while store.stats().blobs < 3:
        pass
    writer.kill()
    writer.join()
    assert store.verify_all() == []


def test_concurrent_identical_requests_generate_once_across_threads(backend):
    store = backend.store
    calls = []
    started = threading.Barrier(8)

    def produce() -> NodeRecord:
        started.wait()
        found = store.lookup("k")
        if found:
            return found
        with store.node_lock("k", lease_seconds=60):
            found = store.lookup("k")
            if found:
                return found
            calls.append(1)
            return _record(store, "k", b"generated once")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: produce(), range(8)))
    assert len(calls) == 1
    assert len({r.outputs["out"].digest for r in results}) == 1


def _locked_generation(reopen: Callable[[], BaseArtifactStore], counter: str, barrier) -> None:
    store = reopen()
    barrier.wait()
    with store.node_lock("k", lease_seconds=60):
        if store.lookup("k") is None:
            with open(counter, "a") as handle:
                handle.write("x")
            _record(store, "k", b"made by one process")


def test_concurrent_identical_requests_generate_once_across_processes(backend, tmp_path):
    counter = tmp_path / "calls"
    # Spawned, not forked: a fork of this process (the fakes' server threads) can inherit a
    # lock held mid-request.
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    workers = [spawn.Process(target=_locked_generation,
                             args=(backend.reopen, str(counter), barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counter.read_text() == "x"


def test_gc_keeps_what_a_kept_manifest_references_and_removes_the_rest(backend):
    store = backend.store
    kept = _record(store, "kept", b"kept bytes")
    _record(store, "orphan", b"orphan bytes")
    store.keep_manifest("video-1", {"nodes": [{"key": "kept", "outputs": {"out": kept.outputs["out"].digest}}]})
    report = store.gc()
    assert (report.removed_nodes, report.removed_blobs) == (1, 1)
    assert store.lookup("kept") == kept
    assert store.lookup("orphan") is None
    assert store.blob_path(kept.outputs["out"].digest).read_bytes() == b"kept bytes"
    stats = store.stats()
    assert (stats.nodes, stats.blobs, stats.kept_manifests) == (1, 1, 1)


def test_gc_older_than_keeps_recent_manifests(backend):
    kept = _record(backend.store, "kept", b"kept bytes")
    backend.store.keep_manifest("video-1", {"nodes": [{"key": "kept", "outputs": {}}]})
    report = backend.store.gc(older_than_days=30)
    assert (report.expired_manifests, report.removed_nodes) == (0, 0)
    assert backend.store.lookup("kept") == kept


def test_gc_older_than_expires_old_manifests(tmp_path):
    store = ArtifactStore(tmp_path)
    kept = _record(store, "kept", b"kept bytes")
    store.keep_manifest("video-1", {"nodes": [{"key": "kept", "outputs": {}}]})
    old = store.kept_manifests()[0]
    os.utime(old, (0, 0))
    report = store.gc(older_than_days=30)
    assert report.expired_manifests == 1
    assert store.lookup("kept") is None and kept.key == "kept"


def _video(store: BaseArtifactStore, name: str, *records: NodeRecord) -> None:
    store.keep_manifest(name, {"nodes": [
        {"key": r.key, "outputs": {n: a.digest for n, a in r.outputs.items()}} for r in records]})


@pytest.mark.parametrize("cap, kept", [(3000, {"old", "new"}), (1600, {"new"}), (1000, set())])
def test_gc_under_a_size_cap_keeps_the_newest_videos_that_fit(backend, cap, kept):
    """Two videos of 1000 own bytes each, sharing 500: the cap decides how many stay."""
    store = backend.store
    shared = _record(store, "shared", b"s" * 500)
    old = _record(store, "old", b"o" * 1000)
    new = _record(store, "new", b"n" * 1000)
    _video(store, "video-old", shared, old)
    _video(store, "video-new", shared, new)
    report = store.gc(max_bytes=cap)
    left = {key for key in ("old", "new") if store.lookup(key) is not None}
    assert left == kept
    assert (store.lookup("shared") is not None) == bool(kept)
    assert report.expired_manifests == 2 - len(kept)
    assert report.kept_bytes == store.stats().blob_bytes <= cap
    assert store.stats().kept_manifests == len(kept)


def test_gc_keeps_a_videos_earlier_versions_within_the_cap_and_the_history_days(backend):
    """Versions 1-3 of one video and another video, 1000 own bytes each: the latest versions
    stay first, then the earlier ones, most recently replaced first, within the cap."""
    store = backend.store
    records = {name: _record(store, name, name.encode() * 1000) for name in ("1", "2", "3", "y")}
    for version in ("1", "2", "3"):
        store.keep_manifest(f"tides-v{version}", {"video": "tides", "version": int(version),
                                                  "nodes": [_node(records[version])]})
    store.keep_manifest("other", {"video": "other", "version": 1, "nodes": [_node(records["y"])]})

    def left() -> set[str]:
        return {name for name in records if store.lookup(name) is not None}

    assert store.gc().expired_manifests == 0 and left() == {"1", "2", "3", "y"}
    assert store.gc(older_than_days=30).expired_manifests == 0
    assert store.gc(max_bytes=3000).expired_manifests == 1 and left() == {"2", "3", "y"}
    assert store.gc(history_days=1).expired_manifests == 0  # replaced just now
    assert store.gc(history_days=0).expired_manifests == 1 and left() == {"3", "y"}
    assert store.versions_of("tides") == [{"video": "tides", "version": 3,
                                          "nodes": [_node(records["3"])]}]


def _node(record: NodeRecord) -> dict:
    return {"key": record.key, "outputs": {n: a.digest for n, a in record.outputs.items()}}


def test_republishing_a_video_makes_it_the_newest_under_the_cap(tmp_path):
    store = ArtifactStore(tmp_path)
    first, second = _record(store, "first", b"1" * 1000), _record(store, "second", b"2" * 1000)
    _video(store, "video-first", first)
    _video(store, "video-second", second)
    os.utime(store.kept / "video-first.json", (1, 1))
    os.utime(store.kept / "video-second.json", (2, 2))
    _video(store, "video-first", first)  # published again: now the newest
    store.gc(max_bytes=1500)
    assert store.lookup("first") is not None and store.lookup("second") is None


def _gc_in_child(root: str, done) -> None:
    ArtifactStore(Path(root)).gc()
    done.set()


def test_gc_waits_while_a_render_holds_the_store_and_then_keeps_nothing_unpublished(tmp_path):
    store = ArtifactStore(tmp_path)
    done = multiprocessing.Event()
    with store.in_use():  # a render in progress, its node not yet in any kept manifest
        _record(store, "in-flight", b"made by a running render")
        collector = multiprocessing.Process(target=_gc_in_child, args=(str(tmp_path), done))
        collector.start()
        assert not done.wait(1.0)  # gc is blocked on the render's shared lock...
        assert store.lookup("in-flight") is not None  # ...and has removed nothing
    collector.join(60)
    assert done.is_set() and store.lookup("in-flight") is None  # after the render, it ran
