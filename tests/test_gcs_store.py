"""The artifact store in a bucket, against the project's GCS fake in this process on 127.0.0.1
(gcp-storage-emulator, made to honour ifGenerationMatch: tests/fakes/gcs.py).

tests/test_store.py runs the store contract against this backend too; these tests cover what
only the bucket has: its layout, local verified copies, the wire, and a Dask cluster sharing it.
The 412 branch of a blob's create is driven by a transport that answers 412 itself, with the
competing write made in between. Generation-once across machines (node leases) is tested in
tests/test_gcs_leases.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import distributed
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from prefect_dask import DaskTaskRunner
from typer.testing import CliRunner

from cache import open_store
from cache.bucket_store import BucketArtifactStore
from cache.buckets import BucketError, BucketTarget
from cache.gcs_bucket import GcsBucket
from cache.keys import bytes_digest
from cache.store import NodeRecord
from flows.cli import app
from flows.video import render_storyboard
from tasks.providers.local_planner import LocalPlanner
from tasks.storyboard import VideoRequest
from tests.fakes.gcs import new_bucket, storage_emulator
from tests.test_cli_input import REELFLOW


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with storage_emulator() as url:
        yield url


@pytest.fixture
def bucket(emulator: str, monkeypatch: pytest.MonkeyPatch) -> storage.Bucket:
    return new_bucket(emulator, monkeypatch, "reelflow-store")


class Wire(requests.Session):
    """The client's HTTP session: records each request (method, URL, timeout, body) and can
    answer chosen requests itself; proxies from the environment are off."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.sent: list[tuple[str, str, object, bytes]] = []
        self.intercept: Callable[[str, str], requests.Response | None] = lambda method, url: None

    def request(self, method, url, *args, **kwargs):
        data = kwargs.get("data")
        self.sent.append((method, url, kwargs.get("timeout"),
                          data if isinstance(data, bytes) else b""))
        answer = self.intercept(method, url)
        return super().request(method, url, *args, **kwargs) if answer is None else answer

    def uploads(self) -> list[tuple[str, str | None]]:
        """(object name, ifGenerationMatch) of each upload, in order."""
        return [(re.search(rb'"name": "([^"]+)"', data).group(1).decode(),
                 dict(parse_qsl(urlsplit(url).query)).get("ifGenerationMatch"))
                for method, url, _, data in self.sent if method == "POST" and "/upload/" in url]


def gcs_store(bucket: storage.Bucket, cache_dir: Path, wire: Wire | None = None,
              ) -> BucketArtifactStore:
    """The store as one machine opens it: its own client, its own folder of local copies."""
    client = storage.Client(project="test", credentials=AnonymousCredentials(), _http=wire)
    return BucketArtifactStore(GcsBucket(BucketTarget.parse(f"gs://{bucket.name}/cache"),
                                         client=client), cache_dir=cache_dir)


def test_the_bucket_holds_blobs_index_and_kept_manifests_under_the_prefix(bucket, tmp_path):
    store = gcs_store(bucket, tmp_path / "a")
    artifact = store.put_bytes(b"narration", "audio/wav")
    record = NodeRecord(key="k" * 64, kind="tts", provider="p", model="m", parts={},
                        outputs={"audio": artifact})
    store.record(record)
    store.keep_manifest("video-1", {"nodes": [{"key": record.key, "outputs": {}}]})

    names = sorted(blob.name for blob in bucket.client.list_blobs(bucket))
    assert names == [f"cache/blobs/{artifact.digest}", f"cache/index/{record.key}.json",
                     "cache/kept/video-1.json"]
    blob = bucket.get_blob(names[0])
    assert (blob.content_type, blob.metadata["sha256"]) == ("audio/wav", bytes_digest(b"narration"))
    assert blob.metadata["crc32c"] == blob.crc32c  # GCS's checksum of the bytes it holds
    assert NodeRecord.model_validate_json(bucket.blob(names[1]).download_as_bytes()) == record
    assert store.root == f"gs://{bucket.name}/cache"
    assert store.kept_manifests() == ["video-1"]


def test_another_machine_downloads_a_blob_once_then_reuses_its_verified_copy(bucket, tmp_path):
    artifact = gcs_store(bucket, tmp_path / "a").put_bytes(b"keyframe", "image/png")
    wire = Wire()
    other = gcs_store(bucket, tmp_path / "b", wire)

    def requests_for_the_blob() -> int:
        return sum(artifact.digest in url for _, url, _, _ in wire.sent)

    path = other.blob_path(artifact.digest)
    assert path.read_bytes() == b"keyframe" and path.is_relative_to(tmp_path / "b")
    assert requests_for_the_blob() == 1
    assert other.blob_path(artifact.digest) == path and requests_for_the_blob() == 1


def test_a_damaged_local_copy_is_downloaded_again(bucket, tmp_path):
    store = gcs_store(bucket, tmp_path / "a")
    path = store.blob_path(store.put_bytes(b"clip bytes", "video/mp4").digest)
    path.chmod(0o644)
    path.write_bytes(b"clip byte")
    assert store.blob_path(bytes_digest(b"clip bytes")).read_bytes() == b"clip bytes"


def test_other_bytes_under_a_blobs_name_are_never_a_result_even_with_its_metadata(
        bucket, tmp_path):
    store = gcs_store(bucket, tmp_path / "a")
    artifact = store.put_bytes(b"data", "text/plain")
    store.record(NodeRecord(key="k1", kind="tts", provider="p", model="m", parts={},
                            outputs={"out": artifact}))
    original = bucket.get_blob(f"cache/blobs/{artifact.digest}")
    forged = bucket.blob(original.name)
    forged.metadata = original.metadata  # same size, same sha256 claim: only GCS's crc32c differs
    forged.upload_from_string(b"DATA")

    assert store.lookup("k1") is None
    assert store.verify_all() == [f"corrupt blob {artifact.digest}"]
    with pytest.raises(BucketError, match=f"gs://{bucket.name}/cache/blobs/{artifact.digest} "
                                            "does not hash to its name"):
        gcs_store(bucket, tmp_path / "b").blob_path(artifact.digest)


def test_every_request_has_a_timeout_and_blobs_are_created_only_if_absent(bucket, tmp_path):
    wire = Wire()
    store = gcs_store(bucket, tmp_path / "a", wire)
    artifact = store.put_bytes(b"once", "x")
    store.put_bytes(b"once", "x")  # already there: not uploaded again
    store.record(NodeRecord(key="k1", kind="tts", provider="p", model="m", parts={},
                            outputs={"out": artifact}))
    store.keep_manifest("video-1", {"nodes": []})
    assert store.lookup("k1") is not None
    store.stats(), store.verify_all(), store.gc()

    assert wire.uploads() == [(f"cache/blobs/{artifact.digest}", "0"),
                              ("cache/index/k1.json", None), ("cache/kept/video-1.json", None)]
    assert all(timeout is not None for _, _, timeout, _ in wire.sent), wire.sent


def answer_412(wire: Wire, before: Callable[[], None]) -> None:
    """The next create answers 412, as GCS does when someone else created the object first;
    `before` is what that someone else wrote."""
    def intercept(method: str, url: str) -> requests.Response | None:
        if method != "POST" or "ifGenerationMatch=0" not in url:
            return None
        wire.intercept = lambda method, url: None
        before()
        response = requests.Response()
        response.status_code = 412
        response._content = b'{"error": {"code": 412, "message": "conditionNotMet"}}'
        response.headers["Content-Type"] = "application/json"
        response.url, response.request = url, requests.Request(method, url).prepare()
        return response

    wire.intercept = intercept


def test_losing_a_create_race_to_the_same_bytes_is_success(bucket, tmp_path):
    wire = Wire()
    store = gcs_store(bucket, tmp_path / "a", wire)
    answer_412(wire, lambda: gcs_store(bucket, tmp_path / "b").put_bytes(b"same", "x"))
    artifact = store.put_bytes(b"same", "x")
    assert store.verify(artifact)


def test_losing_a_create_race_to_other_bytes_names_the_object(bucket, tmp_path):
    wire = Wire()
    store = gcs_store(bucket, tmp_path / "a", wire)
    name = f"cache/blobs/{bytes_digest(b'mine')}"
    answer_412(wire, lambda: bucket.blob(name).upload_from_string(b"theirs"))
    with pytest.raises(BucketError, match=f"gs://{bucket.name}/{name} changed while storing"):
        store.put_bytes(b"mine", "x")


def test_a_failed_request_is_one_error_naming_the_object(emulator, monkeypatch, tmp_path):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    store = BucketArtifactStore(GcsBucket(BucketTarget.parse("gs://no-such-bucket/cache")),
                                cache_dir=tmp_path / "a")
    digest = bytes_digest(b"bytes")
    with pytest.raises(BucketError) as error:
        store.put_bytes(b"bytes", "x")
    assert str(error.value).startswith(
        f"upload gs://no-such-bucket/cache/blobs/{digest} failed: 404")
    assert "\n" not in str(error.value)


def test_the_cache_commands_read_the_bucket(bucket, tmp_path, monkeypatch):
    location = f"gs://{bucket.name}/cache"
    monkeypatch.setenv("REELFLOW_STORE", location)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = open_store(location)
    for key, data in (("kept", b"kept bytes"), ("orphan", b"orphan bytes")):
        store.record(NodeRecord(key=key, kind="tts", provider="p", model="m", parts={},
                                outputs={"out": store.put_bytes(data, "x")}))
    store.keep_manifest("video-1", {"nodes": [{"key": "kept", "outputs": {}}]})

    stats = CliRunner().invoke(app, ["cache", "stats"])
    assert stats.exit_code == 0 and f"store     {location}\nnodes     2  tts=2" in stats.output
    assert "kept      1 published manifests" in stats.output
    verify = CliRunner().invoke(app, ["cache", "verify"])
    assert (verify.exit_code, verify.output) == (0, "0 problems\n")
    collected = CliRunner().invoke(app, ["cache", "gc"])
    assert collected.output.startswith("removed 1 nodes, 1 blobs")
    assert store.lookup("kept") is not None and store.lookup("orphan") is None


def test_a_missing_bucket_is_exit_2_naming_it_before_anything_is_made(emulator, cli_env,
                                                                      workspace, tmp_path):
    env = {**cli_env, "STORAGE_EMULATOR_HOST": emulator,
           "REELFLOW_STORE": "gs://reelflow-missing-bucket/cache"}
    result = subprocess.run([REELFLOW, "make", "bees"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("error: store: gs://reelflow-missing-bucket/: the bucket does not "
                             "exist\n")
    assert list(tmp_path.iterdir()) == [] and not workspace["out"].exists()


def test_a_dask_cluster_renders_into_the_bucket_and_another_process_reuses_every_node(
        prefect_api_url, workspace, bucket, emulator, tmp_path, monkeypatch):
    # Machine A is this process and the cluster's worker processes, which take this
    # environment when they start; machine B, the rerun, has an empty folder of local copies.
    machine_a, machine_b = tmp_path / "machine-a", tmp_path / "machine-b"
    machine_a.mkdir()
    machine_b.mkdir()
    monkeypatch.setenv("REELFLOW_STORE", f"gs://{bucket.name}/cache")
    monkeypatch.setenv("TMPDIR", str(machine_a))
    monkeypatch.setattr(tempfile, "tempdir", str(machine_a))
    board = LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=2)).storyboard

    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        worker_pids = client.run(os.getpid)
        with distributed.get_task_stream(client) as tasks:
            summary = render_storyboard.with_options(
                task_runner=DaskTaskRunner(address=cluster.scheduler_address))(board)

    ran_on = {task["key"].rsplit("-", 1)[0]: task["worker"] for task in tasks.data}
    assert "make_node" in ran_on  # every node of the graph is this one task function
    assert set(ran_on.values()) <= set(worker_pids)
    assert os.getpid() not in worker_pids.values()
    assert summary.generated == len(summary.nodes) == 2 * 3 + 3  # a segment, compose, publish
    stored = {blob.name for blob in bucket.client.list_blobs(bucket)}
    for node in json.loads(summary.manifest.read_text())["nodes"]:
        if node["key"]:
            assert f"cache/index/{node['key']}.json" in stored
        assert {f"cache/blobs/{digest}" for digest in node["outputs"].values()} <= stored

    env = {**os.environ, "PREFECT_API_URL": prefect_api_url, "TMPDIR": str(machine_b)}
    rerun = subprocess.run([REELFLOW, "render", str(summary.storyboard), "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    again = json.loads(rerun.stdout)
    assert again["generated"] == 0
    assert {node["status"] for node in again["nodes"]} == {"cached"}
    assert len(again["nodes"]) == len(summary.nodes)
