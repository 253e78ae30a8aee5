"""Node leases on a bucket store: machines sharing one bucket generate (and pay for) each node
once, and a machine that dies holding a lease is taken over once the lease expires.

The lease tests run on GCS and on S3 (cache.leases is written once against cache.buckets):
against the project's GCS fake (tests/fakes/gcs.py), which answers 412 where GCS would (the
plain emulator ignores preconditions, so every claimant would "win"), and against moto's S3
server (tests/fakes/s3.py). "Machines" are bucket objects or `reelflow render` processes with
their own client and their own folder of local copies and locks, sharing nothing but the bucket.
The whole renders on two machines run on GCS; tests/test_s3.py renders on S3.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cache.bucket_store import BucketArtifactStore
from cache.buckets import ABSENT, Bucket, BucketTarget
from cache.gcs_bucket import GcsBucket
from cache.leases import Lease, claim
from cache.s3_bucket import S3Bucket
from cache.store import NodeRecord
from tasks.ffmpeg import probe
from tests.fakes.gcs import GcsFake, gcs_fake, new_bucket
from tests.fakes.s3 import S3Fake, s3_fake, use_s3
from tests.pacing import paced_seconds
from tests.test_cli_input import REELFLOW, run
from tests.test_crash_resume import KILLPOINT

LEASE = "cache/leases/node"
TTL_S = 2.0  # unit tests: a lease expires after 2 s without renewal


@pytest.fixture(scope="module")
def fake() -> Iterator[GcsFake]:
    with gcs_fake() as fake:
        yield fake


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Fake]:
    with s3_fake() as fake:
        yield fake


@pytest.fixture
def bucket(fake: GcsFake, monkeypatch: pytest.MonkeyPatch) -> storage.Bucket:
    return new_bucket(fake.url, monkeypatch, "reelflow-lease")


@dataclass
class OneBucket:
    """One bucket on one service, as the machines of a test reach it."""

    machine: Callable[[], Bucket]  # the bucket as another machine sees it: its own client
    lease_writes: Callable[[], int]  # writes of the lease the server accepted so far

    def holder(self) -> str | None:
        found = self.machine().stat(LEASE)
        return None if found is None else found.metadata["holder"]

    def lease_left(self) -> bool:
        return self.machine().stat(LEASE) is not None


@pytest.fixture(params=["gcs", "s3"])
def one_bucket(request, monkeypatch: pytest.MonkeyPatch) -> OneBucket:
    if request.param == "gcs":
        gcs = request.getfixturevalue("fake")
        name = new_bucket(gcs.url, monkeypatch, "reelflow-lease").name
        target = BucketTarget.parse(f"gs://{name}")
        return OneBucket(lambda: GcsBucket(target, client=storage.Client(
            project="test", credentials=AnonymousCredentials())),
            lambda: gcs.written.count(f"gs://{name}/{LEASE}"))
    s3 = request.getfixturevalue("s3")
    use_s3(monkeypatch, s3)
    target = BucketTarget.parse(f"s3://{s3.new_bucket('reelflow-lease')}")
    return OneBucket(lambda: S3Bucket(target, endpoint_url=s3.endpoint, addressing_style="path"),
                  lambda: s3.writes(f"/{target.bucket}/{LEASE}"))


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll a condition (not a duration) until it holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def claimants(one_bucket: OneBucket, count: int, done: threading.Event,
              ttl_s: float = TTL_S) -> tuple[list[threading.Thread], list[Lease | None]]:
    """`count` machines claiming the lease at once; each gives up once `done` is set."""
    results: list[Lease | None] = []
    start = threading.Barrier(count)

    def claimant() -> None:
        start.wait()
        results.append(claim(one_bucket.machine(), LEASE, ttl_s, made=done.is_set))

    threads = [threading.Thread(target=claimant) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def test_of_many_claimants_at_once_exactly_one_holds_the_lease(one_bucket):
    done = threading.Event()
    threads, results = claimants(one_bucket, 6, done)
    wait_until(lambda: any(results), "a claimant holds the lease")
    done.set()  # the node is stored: the others stop waiting
    for thread in threads:
        thread.join(30)

    leases = [lease for lease in results if lease is not None]
    assert len(results) == 6 and len(leases) == 1
    assert one_bucket.holder() == leases[0].holder["holder"]
    leases[0].release()
    assert not one_bucket.lease_left()


def test_renewal_keeps_the_lease_from_waiters_well_past_its_ttl(one_bucket):
    holder = claim(one_bucket.machine(), LEASE, TTL_S, made=lambda: False)
    done = threading.Event()
    threads, results = claimants(one_bucket, 2, done)
    wait_until(lambda: one_bucket.lease_writes() >= 1 + 3 * 3, "3 TTLs of renewals")  # and creation

    assert results == [] and not holder.lost  # both still waiting
    assert one_bucket.holder() == holder.holder["holder"]
    done.set()
    for thread in threads:
        thread.join(30)
    assert results == [None, None]
    holder.release()
    assert not one_bucket.lease_left()


def test_a_dead_holders_lease_is_taken_over_by_exactly_one_waiter(one_bucket):
    # What a killed holder leaves: its lease, never renewed again.
    one_bucket.machine().write(LEASE, b"dead", content_type="text/plain", expect=ABSENT, metadata={
        "holder": "killed", "host": "elsewhere", "pid": "1", "ttl-s": f"{TTL_S:g}"})

    done = threading.Event()
    threads, results = claimants(one_bucket, 4, done, ttl_s=60)  # the holder's TTL is what counts
    wait_until(lambda: any(results), "a waiter took the lease over")
    done.set()
    for thread in threads:
        thread.join(30)

    leases = [lease for lease in results if lease is not None]
    assert len(results) == 4 and len(leases) == 1
    taker = leases[0]
    assert one_bucket.holder() == taker.holder["holder"] != "killed"
    taker.release()
    assert not one_bucket.lease_left()


def test_a_holder_whose_lease_was_taken_over_stops_claiming_it(one_bucket):
    holder = claim(one_bucket.machine(), LEASE, TTL_S, made=lambda: False)
    # Another machine took it over (as after a long pause of this one): it wrote at the
    # version it saw, so the holder's next renewal is refused.
    one_bucket.machine().write(LEASE, b"taken", content_type="text/plain", expect=holder.version,
                           metadata={"holder": "taker", "host": "elsewhere", "pid": "2",
                                     "ttl-s": "60"})
    wait_until(lambda: holder.lost, "the holder saw its lease taken over")

    holder.release()
    assert one_bucket.holder() == "taker"  # neither renewed nor deleted by the former holder


def node_record(store: BucketArtifactStore, key: str) -> NodeRecord:
    return NodeRecord(key=key, kind="tts", provider="p", model="m", parts={},
                      outputs={"audio": store.put_bytes(b"narration", "audio/wav")})


def test_a_waiter_returns_when_another_machine_stores_the_node_and_does_not_generate_it(
        one_bucket, tmp_path):
    def store(name: str) -> BucketArtifactStore:
        return BucketArtifactStore(one_bucket.machine(), cache_dir=tmp_path / name)

    first, second = store("machine-a"), store("machine-b")
    generated_by_second = []
    second_done = threading.Event()

    def produce_on_second_machine() -> None:
        with second.node_lock("node", lease_seconds=60):
            if second.lookup("node") is None:
                generated_by_second.append(True)
        second_done.set()

    with first.node_lock("node", lease_seconds=60):
        waiter = threading.Thread(target=produce_on_second_machine)
        waiter.start()
        first.record(node_record(first, "node"))
        # The waiter returns while the first machine still holds the lease (60 s from expiry).
        assert second_done.wait(30)
    waiter.join(30)

    assert generated_by_second == []
    assert not one_bucket.lease_left()


# Whole renders on two machines ---------------------------------------------------------------

def storyboard() -> dict:
    texts = ["Two machines, one bucket.", "Each node is paid once.", "Then the video is done."]
    return {"title": "Shared bucket", "scenes": [
        {"id": f"s{n:03d}", "order": n, "lines": [{"text": text}],
         "visual_prompt": f"a shared bucket, part {n}", "duration": 2.0}
        for n, text in enumerate(texts)]}


@pytest.fixture
def render() -> Iterator[Callable[[dict, Path], subprocess.Popen]]:
    """Start `reelflow render` as a machine would; any still running afterwards is killed."""
    started: list[subprocess.Popen] = []

    def start(env: dict, board: Path) -> subprocess.Popen:
        # Its own session: a kill point kills the render's process group, not pytest's.
        started.append(subprocess.Popen(
            [REELFLOW, "render", str(board), "--json"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def shared(cli_env, prefect_api_url, tmp_path, monkeypatch):
    """Two machines' environments: one bucket on the fake; each its own local cache (TMPDIR)
    and output folder."""
    with gcs_fake() as fake:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake.url)
        client = storage.Client(project="test", credentials=AnonymousCredentials())
        bucket = client.create_bucket(f"reelflow-lease-{uuid.uuid4().hex[:12]}")
        board = tmp_path / "board.json"
        board.write_text(json.dumps(storyboard()))
        envs = []
        for name in ("machine-a", "machine-b"):
            (tmp_path / name).mkdir()
            envs.append({**cli_env, "PREFECT_API_URL": prefect_api_url,
                         "STORAGE_EMULATOR_HOST": fake.url, "TMPDIR": str(tmp_path / name),
                         "REELFLOW_OUT": str(tmp_path / name / "out"),
                         "REELFLOW_STORE": f"gs://{bucket.name}/cache",
                         "REELFLOW_LEASE_SECONDS": "3"})
        yield fake, bucket, board, envs


def finished(process: subprocess.Popen, bucket: storage.Bucket, scratch: Path) -> dict:
    """The render's summary, once its video is checked: as long as its speech says."""
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    manifest = json.loads(Path(summary["manifest"]).read_text())
    store = BucketArtifactStore(GcsBucket(BucketTarget.parse(f"gs://{bucket.name}/cache"),
                                          client=bucket.client), cache_dir=scratch)
    assert probe(summary["video"]).duration == pytest.approx(paced_seconds(manifest, store),
                                                             abs=0.1)
    return summary


def index_writes(fake: GcsFake, bucket: storage.Bucket) -> Counter:
    """How many times each node's record was written: once per generation, i.e. per payment."""
    prefix = f"gs://{bucket.name}/cache/index/"
    return Counter(uri for uri in fake.written if uri.startswith(prefix))


def leases(bucket: storage.Bucket) -> list[storage.Blob]:
    return list(bucket.client.list_blobs(bucket, prefix="cache/leases/"))


def with_point(env: dict, variable: str, spec: str) -> dict:
    """`env` with a kill or pause point (tests/fakes/killpoint) set."""
    return {**env, variable: spec,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(KILLPOINT), env.get("PYTHONPATH")]))}


def test_two_machines_rendering_the_same_storyboard_at_once_pay_for_each_node_once(
        shared, render, tmp_path):
    fake, bucket, board, (env_a, env_b) = shared
    # A holds still inside its first clip, holding that node's lease, while B renders the same
    # storyboard; A goes on once B is seen waiting on a lease (reading it after a refused
    # claim). Without leases B never waits: it makes the clip too.
    go = tmp_path / "go"
    a = render(with_point(env_a, "REELFLOW_TEST_PAUSE_AT",
                          f"tasks.providers.kenburns:KenBurnsAnimator.animate:1:{go}"), board)
    wait_until(lambda: Path(f"{go}.waiting").exists(), "A paused in its first clip",
               timeout_s=120)
    b = render(env_b, board)
    wait_until(lambda: ("GET", f"/storage/v1/b/{bucket.name}/o/cache/leases/") in {
        (method, path.rsplit("/", 1)[0] + "/") for method, path in fake.requests},
        "B waiting on a lease", timeout_s=120)
    go.touch()
    summaries = [finished(a, bucket, tmp_path / "reader-a"),
                 finished(b, bucket, tmp_path / "reader-b")]

    generated = Counter()
    for summary in summaries:
        manifest = json.loads(Path(summary["manifest"]).read_text())
        for node in manifest["nodes"]:
            if node["key"]:
                generated[node["key"]] += node["status"] == "generated"
    assert len(generated) == 3 * 3 + 2  # 3 scenes × (speech, picture, clip), a segment, compose
    assert set(generated.values()) == {1}, generated
    assert set(index_writes(fake, bucket).values()) == {1}
    assert leases(bucket) == []
    assert run(["cache", "verify"], env_a).returncode == 0


def test_a_machine_killed_mid_render_has_its_leases_taken_over_by_the_other(shared, render,
                                                                          tmp_path):
    fake, bucket, board, (env_a, env_b) = shared
    # Machine A dies inside its first speech generation: it holds that node's lease (and
    # perhaps others), which nobody renews again.
    a = render(with_point(env_a, "REELFLOW_TEST_KILL_AT",
                          "tasks.providers.espeak:EspeakSpeech.synthesize:1"), board)
    wait_until(lambda: any("/cache/leases/" in uri for uri in fake.written), "A's first lease",
               timeout_s=120)
    b = render(env_b, board)  # starts while A is rendering (or just dead)
    a.communicate(timeout=120)
    assert a.returncode == -signal.SIGKILL
    left = {blob.name.rsplit("/", 1)[1] for blob in leases(bucket)
            if blob.metadata["pid"] == str(a.pid)}
    made = {blob.name.rsplit("/", 1)[1].removesuffix(".json")
            for blob in bucket.client.list_blobs(bucket, prefix="cache/index/")}
    unfinished = left - made  # a lease A held on a node it had stored is nobody's concern
    assert unfinished

    summary = finished(b, bucket, tmp_path / "reader")

    assert {blob.name.rsplit("/", 1)[1] for blob in leases(bucket)} <= left & made
    assert set(index_writes(fake, bucket).values()) == {1}  # nothing paid twice
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert {n["key"]: n["status"] for n in manifest["nodes"] if n["key"] in unfinished} == \
        dict.fromkeys(unfinished, "generated")  # B took each over once it expired
    assert run(["cache", "verify"], env_b).returncode == 0
