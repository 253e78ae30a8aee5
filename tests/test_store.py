"""The artifact store: content-addressed blobs, verified hits, atomic writes, one generation."""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cache.keys import bytes_digest
from cache.store import ArtifactStore, NodeRecord


def _record(store: ArtifactStore, key: str, data: bytes, kind: str = "tts") -> NodeRecord:
    artifact = store.put_bytes(data, "application/octet-stream")
    record = NodeRecord(key=key, kind=kind, provider="p", model="m", parts={}, outputs={"out": artifact})
    store.record(record)
    return record


def test_blobs_are_named_by_the_sha256_of_their_bytes(tmp_path):
    store = ArtifactStore(tmp_path)
    artifact = store.put_bytes(b"hello", "text/plain")
    assert artifact.digest == bytes_digest(b"hello")
    assert store.blob_path(artifact.digest).read_bytes() == b"hello"


def test_identical_bytes_are_stored_once(tmp_path):
    store = ArtifactStore(tmp_path)
    source = tmp_path / "a.bin"
    source.write_bytes(b"same")
    first, second = store.put_bytes(b"same", "x"), store.put_file(source, "x")
    assert first.digest == second.digest
    assert store.stats().blobs == 1


def test_lookup_returns_a_recorded_node(tmp_path):
    store = ArtifactStore(tmp_path)
    record = _record(store, "k1", b"data")
    assert store.lookup("k1") == record
    assert store.lookup("other") is None


def test_a_corrupt_blob_is_a_miss_and_verify_reports_it(tmp_path):
    store = ArtifactStore(tmp_path)
    record = _record(store, "k1", b"data")
    path = store.blob_path(record.outputs["out"].digest)
    path.chmod(0o644)
    path.write_bytes(b"dat")  # truncated, as a crash or a disk fault could leave it
    assert store.lookup("k1") is None
    assert any("corrupt" in problem for problem in store.verify_all())


def test_a_missing_blob_is_a_miss_and_verify_reports_it(tmp_path):
    store = ArtifactStore(tmp_path)
    record = _record(store, "k1", b"data")
    store.blob_path(record.outputs["out"].digest).unlink()
    assert store.lookup("k1") is None
    assert any("lost" in problem for problem in store.verify_all())


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


def test_concurrent_identical_requests_generate_once_across_threads(tmp_path):
    store = ArtifactStore(tmp_path)
    calls = []
    started = threading.Barrier(8)

    def produce() -> NodeRecord:
        started.wait()
        found = store.lookup("k")
        if found:
            return found
        with store.node_lock("k"):
            found = store.lookup("k")
            if found:
                return found
            calls.append(1)
            return _record(store, "k", b"generated once")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: produce(), range(8)))
    assert len(calls) == 1
    assert len({r.outputs["out"].digest for r in results}) == 1


def _locked_generation(root: str, counter: str, barrier) -> None:
    store = ArtifactStore(Path(root))
    barrier.wait()
    with store.node_lock("k"):
        if store.lookup("k") is None:
            with open(counter, "a") as handle:
                handle.write("x")
            _record(store, "k", b"made by one process")


def test_concurrent_identical_requests_generate_once_across_processes(tmp_path):
    counter = tmp_path / "calls"
    barrier = multiprocessing.Barrier(4)
    workers = [multiprocessing.Process(target=_locked_generation,
                                       args=(str(tmp_path / "store"), str(counter), barrier))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert counter.read_text() == "x"


def test_gc_keeps_what_a_kept_manifest_references_and_removes_the_rest(tmp_path):
    store = ArtifactStore(tmp_path)
    kept = _record(store, "kept", b"kept bytes")
    _record(store, "orphan", b"orphan bytes")
    store.keep_manifest("video-1", {"nodes": [{"key": "kept", "outputs": {"out": kept.outputs["out"].digest}}]})
    report = store.gc()
    assert (report.removed_nodes, report.removed_blobs) == (1, 1)
    assert store.lookup("kept") == kept
    assert store.lookup("orphan") is None


def test_gc_older_than_expires_old_manifests(tmp_path):
    store = ArtifactStore(tmp_path)
    kept = _record(store, "kept", b"kept bytes")
    store.keep_manifest("video-1", {"nodes": [{"key": "kept", "outputs": {}}]})
    old = store.kept_manifests()[0]
    os.utime(old, (0, 0))
    report = store.gc(older_than_days=30)
    assert report.expired_manifests == 1
    assert store.lookup("kept") is None and kept.key == "kept"
