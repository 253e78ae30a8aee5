"""S3 beside GCS, against moto's S3 server in this process on 127.0.0.1 (tests/fakes/s3.py), read
through boto3 with no mock of the client: s3:// locations, publishing (the video last, a
presigned URL that a plain HTTP client downloads, a rerun that writes nothing), two processes
storing the same nodes (each object written once: PUTs counted at the server), the start-up
check and every bad location (exit 2, one line, nothing made or published), and a whole render
that another machine reuses. The store contract runs on S3 in tests/test_store.py, node leases
in tests/test_gcs_leases.py, four concurrent renders in tests/test_concurrent_runs.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from cache.bucket_store import BucketArtifactStore
from cache.buckets import BucketError, BucketTarget
from cache.keys import bytes_digest
from cache.s3_bucket import S3Bucket
from tasks.bucket_publish import publish_to_bucket, video_url
from tests.fakes.s3 import S3Fake, s3_fake, use_s3
from tests.test_cli_input import REELFLOW

NAME = "how-bees-make-honey-3f2a9c1b7d4e"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Fake]:
    with s3_fake() as fake:
        yield fake


@pytest.fixture
def aws(s3: S3Fake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The SDK pointed at the fake; the fake honours conditions and refuses nothing."""
    s3.conditions, s3.denied = "honour", set()
    return use_s3(monkeypatch, s3)


def bucket_at(s3: S3Fake, location: str) -> S3Bucket:
    return S3Bucket(BucketTarget.parse(location), endpoint_url=s3.endpoint, addressing_style="path")


def puts(s3: S3Fake, since: int = 0) -> list[tuple[str, int, str]]:
    """(path, status, condition) of each PUT the server answered, from request `since` on."""
    return [(path, status, condition) for method, path, status, condition in s3.requests[since:]
            if method == "PUT"]


# Locations -------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, bucket, prefix", [
    ("s3://my-bucket", "my-bucket", ""),
    ("s3://team.videos/reelflow/", "team.videos", "reelflow"),
    ("S3://my-bucket/a/b", "my-bucket", "a/b"),
])
def test_an_s3_location_is_a_bucket_and_an_optional_prefix(uri, bucket, prefix):
    assert BucketTarget.parse(uri) == BucketTarget("s3", bucket, prefix)


@pytest.mark.parametrize("uri, says", [
    ("s3://", "names no bucket"),
    ("s3:///videos", "names no bucket"),
    ("s3://ab", "3-63 characters"),
    ("s3://My_Bucket", "only a-z 0-9 - ."),
    ("s3://bad..dots", "adjacent"),
    ("s3://10.0.0.1/x", "IP address"),
    ("s3://bucket/a/../b", "'..'"),
    ("az://bucket/x", "az:// is not supported"),
])
def test_a_bad_s3_location_is_one_line_naming_what_is_wrong(uri, says):
    with pytest.raises(ValueError) as error:
        BucketTarget.parse(uri)
    assert says in str(error.value) and "\n" not in str(error.value)


# Publishing ------------------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path: Path) -> dict[str, Path]:
    """A published folder as tasks/publish.py writes it."""
    root = tmp_path / NAME
    root.mkdir()
    contents = {"video.mp4": os.urandom(300_000), "subtitles.ass": b"[Script Info]\n",
                "storyboard.json": b'{"title": "Bees"}', "manifest.json": b'{"run": 1}'}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return {name: root / name for name in contents}


def test_publishing_writes_the_video_last_and_a_plain_client_downloads_its_presigned_url(
        s3, aws, folder):
    bucket = bucket_at(s3, f"s3://{s3.new_bucket()}/videos")
    url = video_url(bucket, NAME, 900)  # before the upload, as the manifest records it
    since = len(s3.requests)
    published = publish_to_bucket(bucket, NAME, folder)

    written = puts(s3, since)
    assert [path.rsplit("/", 1)[1] for path, _, _ in written][-1] == "video.mp4"
    assert {path.rsplit("/", 1)[1] for path, _, _ in written} == set(folder)
    assert {(status, condition) for _, status, condition in written} == {(200, "*")}
    assert published.folder == f"s3://{bucket.target.bucket}/videos/{NAME}/"
    head = s3.client().head_object(Bucket=bucket.target.bucket, Key=f"videos/{NAME}/video.mp4")
    assert head["ContentType"] == "video/mp4"

    query = dict(parse_qsl(urlsplit(url).query))
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and query["X-Amz-Expires"] == "900"
    assert aws["AWS_SECRET_ACCESS_KEY"] not in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == folder["video.mp4"].read_bytes()


def test_republishing_writes_nothing_and_a_changed_manifest_replaces_only_its_version(
        s3, aws, folder):
    bucket = bucket_at(s3, f"s3://{s3.new_bucket()}/videos")
    publish_to_bucket(bucket, NAME, folder)
    manifest = bucket.stat(f"videos/{NAME}/manifest.json")

    since = len(s3.requests)
    assert publish_to_bucket(bucket, NAME, folder).uploaded == ()
    assert puts(s3, since) == []

    folder["manifest.json"].write_bytes(b'{"run": 2}')
    since = len(s3.requests)
    assert publish_to_bucket(bucket, NAME, folder).uploaded == ("manifest.json",)
    assert puts(s3, since) == [(f"/{bucket.target.bucket}/videos/{NAME}/manifest.json", 200,
                                manifest.version)]  # If-Match: the version it replaces


def test_other_bytes_under_a_published_name_are_refused_before_anything_is_written(
        s3, aws, folder):
    bucket = bucket_at(s3, f"s3://{s3.new_bucket()}/videos")
    publish_to_bucket(bucket, NAME, folder)
    folder["video.mp4"].write_bytes(os.urandom(300_000))
    folder["manifest.json"].write_bytes(b'{"run": 2}')

    since = len(s3.requests)
    with pytest.raises(BucketError, match=f"s3://{bucket.target.bucket}/videos/{NAME}/video.mp4 "
                                          "already exists with different content"):
        publish_to_bucket(bucket, NAME, folder)
    assert puts(s3, since) == []


# Two machines storing the same nodes -----------------------------------------------------

PAYLOADS = [f"node {n} ".encode() * 5000 for n in range(12)]


def _store_all(endpoint: str, location: str, cache_dir: str, barrier) -> None:
    bucket = S3Bucket(BucketTarget.parse(location), endpoint_url=endpoint, addressing_style="path")
    store = BucketArtifactStore(bucket, cache_dir=Path(cache_dir))
    barrier.wait()
    for data in PAYLOADS:
        store.put_bytes(data, "application/octet-stream")


def test_two_processes_storing_the_same_nodes_at_once_write_each_object_once(s3, aws, tmp_path):
    location = f"s3://{s3.new_bucket()}/cache"
    # Spawned, not forked: a fork of this process (its server and Prefect threads) can inherit
    # a lock held mid-request.
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    since = len(s3.requests)
    machines = [spawn.Process(target=_store_all, args=(
        s3.endpoint, location, str(tmp_path / name), barrier)) for name in ("a", "b")]
    for machine in machines:
        machine.start()
    for machine in machines:
        machine.join(120)
    assert [machine.exitcode for machine in machines] == [0, 0]

    written = puts(s3, since)
    assert {condition for _, _, condition in written} == {"*"}  # every create: only if absent
    store = BucketArtifactStore(bucket_at(s3, location), cache_dir=tmp_path / "reader")
    for data in PAYLOADS:
        digest = bytes_digest(data)
        assert sum(path.endswith(digest) and status == 200 for path, status, _ in written) == 1
        assert store.blob_path(digest).read_bytes() == data


def test_losing_a_create_race_to_the_same_bytes_is_success_and_to_other_bytes_an_error(
        s3, aws, tmp_path):
    location = f"s3://{s3.new_bucket()}/cache"
    first = BucketArtifactStore(bucket_at(s3, location), cache_dir=tmp_path / "a")
    second = BucketArtifactStore(bucket_at(s3, location), cache_dir=tmp_path / "b")
    looked = second.bucket.stat

    def look_then_lose(name: str):
        found = looked(name)  # nothing there yet: then the other machine writes first
        first.put_bytes(b"same bytes", "x")
        return found

    second.bucket.stat = look_then_lose
    artifact = second.put_bytes(b"same bytes", "x")
    assert first.verify(artifact)
    assert s3.writes(f"/{first.target.bucket}/cache/blobs/{artifact.digest}") == 1

    theirs = bytes_digest(b"mine")
    second.bucket.stat = lambda name: (looked(name), first.bucket.write(
        name, b"theirs", content_type="x"))[0]
    with pytest.raises(BucketError, match=f"{location}/blobs/{theirs} changed while storing"):
        second.put_bytes(b"mine", "x")


@pytest.mark.parametrize("racing, stored", [(2, True), (3, False)])
def test_a_write_that_raced_another_conditional_one_is_made_again_as_s3_asks(
        racing, stored, s3, aws, tmp_path):
    location = f"s3://{s3.new_bucket()}/cache"
    store = BucketArtifactStore(bucket_at(s3, location), cache_dir=tmp_path / "copies")
    s3.racing = racing  # 409 ConditionalRequestConflict for this many writes, then as usual
    if stored:
        assert store.verify(store.put_bytes(b"raced twice", "x"))
    else:
        with pytest.raises(BucketError, match="changed while storing it; run again"):
            store.put_bytes(b"raced thrice", "x")
    assert s3.racing == 0


# The start-up check and bad locations ----------------------------------------------------

def reelflow(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([REELFLOW, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)


def assert_refused(result: subprocess.CompletedProcess, line: str) -> None:
    assert result.returncode == 2, result.stderr
    said = result.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith(f"error: {line}"), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("store, line", [
    ("az://bucket/cache", "settings.store: 'az://bucket/cache': az:// is not supported; use a "
                          "folder, gs://BUCKET/PREFIX or s3://BUCKET/PREFIX"),
    ("http://example.com/cache", "settings.store: 'http://example.com/cache': http:// is not"),
    ("s3://", "settings.store: 's3://' names no bucket"),
    ("s3://Team_Bucket/cache", "settings.store: bad bucket name 'Team_Bucket'"),
])
def test_an_unsupported_or_malformed_store_is_refused_and_nothing_is_made(
        store, line, cli_env, workspace, tmp_path):
    result = reelflow(["make", "bees"], {**cli_env, "REELFLOW_STORE": store}, tmp_path)
    assert_refused(result, line)
    assert list(tmp_path.iterdir()) == []  # no folder named "az:" or "s3:" here
    assert not workspace["out"].exists()


@pytest.mark.parametrize("where, denied, line", [
    ("store", set(), "store: s3://{missing}/: the bucket does not exist"),
    ("publish", set(), "publish: s3://{missing}/: the bucket does not exist"),
    ("store", {"PUT"}, "store: s3://{bucket}/: access refused: this machine needs s3:PutObject"),
    ("store", {"HEAD"}, "store: s3://{bucket}/: access refused: this machine needs s3:ListBucket"),
    ("publish", {"GET", "HEAD"}, "publish: s3://{bucket}/: access refused: this machine needs "
                                 "s3:ListBucket"),
])
def test_a_missing_or_refused_bucket_is_exit_2_naming_it_before_anything_is_paid(
        where, denied, line, s3, aws, cli_env, workspace, tmp_path):
    bucket, missing = s3.new_bucket(), f"reelflow-missing-{secrets.token_hex(4)}"
    named = missing if "missing" in line else bucket
    location = {"store": f"s3://{named}/cache", "publish": f"s3://{named}/videos"}[where]
    env = {**cli_env, **aws, **({"REELFLOW_STORE": location} if where == "store" else {})}
    args = ["make", "bees", *(["--publish", location] if where == "publish" else [])]
    s3.denied = denied
    since = len(s3.requests)
    result = reelflow(args, env, tmp_path)
    s3.denied = set()

    assert_refused(result, line.format(missing=missing, bucket=bucket))
    assert [(method, status) for method, _, status, _ in s3.requests[since:]
            if status < 400 and method != "HEAD"] == []  # nothing written or read
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert not workspace["out"].exists() and not workspace["store"].exists()


def test_an_endpoint_that_does_not_answer_is_exit_2_naming_it(cli_env, aws, workspace, tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = reelflow(["make", "bees"], {**cli_env, **aws, "REELFLOW_S3_ENDPOINT_URL": endpoint,
                                             "REELFLOW_STORE": "s3://reelflow-team/cache"}, tmp_path)
    assert_refused(result, f"store: s3://reelflow-team/: cannot reach the service: Read timeout "
                           f'on endpoint URL: "{endpoint}/reelflow-team"')
    assert not workspace["out"].exists()


@pytest.mark.parametrize("conditions, said", [
    ("ignore", "the service ignores conditional writes (If-None-Match)"),
    ("refuse", "the service refuses conditional writes (If-None-Match: NotImplemented)"),
])
def test_a_service_without_conditional_writes_is_said_at_start_up_and_still_stores_once(
        conditions, said, s3, aws, cli_env, tmp_path):
    location = f"s3://{s3.new_bucket()}/cache"
    s3.conditions = conditions
    result = reelflow(["cache", "stats"], {**cli_env, **aws, "REELFLOW_STORE": location}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"warning: {location.removesuffix('cache')}: {said}: machines "
                                    "sharing it can overwrite each other's objects")

    bucket = bucket_at(s3, location)
    assert bucket.check_access() and not bucket.conditional
    store = BucketArtifactStore(bucket, cache_dir=tmp_path / "copies")
    artifact = store.put_bytes(b"looked before it wrote", "x")
    store.put_bytes(b"looked before it wrote", "x")
    assert s3.writes(f"/{bucket.target.bucket}/cache/blobs/{artifact.digest}") == 1
    assert store.verify(artifact)


# A whole render, and another machine ----------------------------------------------------

def test_a_render_stored_and_published_on_s3_is_reused_by_another_machine(
        s3, aws, cli_env, prefect_api_url, workspace, tmp_path, monkeypatch):
    store, videos = f"s3://{s3.new_bucket()}/reelflow", f"s3://{s3.new_bucket()}/videos"
    secret = f"never-shown-{secrets.token_hex(8)}"  # moto takes any key; this one must not leak
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    board = tmp_path / "board.json"
    board.write_text(json.dumps({"title": "Shared bucket", "scenes": [
        {"id": f"s{n:03d}", "order": n, "lines": [{"text": text}], "visual_prompt": text,
         "duration": 2.0} for n, text in enumerate(["Bees dance.", "The hive listens."])]}))

    def render_on(machine: str, **settings: str) -> dict:
        (tmp_path / machine).mkdir()
        env = {**cli_env, **aws, "AWS_SECRET_ACCESS_KEY": secret, "PREFECT_API_URL": prefect_api_url,
               "REELFLOW_STORE": store, "TMPDIR": str(tmp_path / machine),
               "REELFLOW_OUT": str(tmp_path / machine / "out"), **settings}
        result = subprocess.run([REELFLOW, "render", str(board), "--publish", videos, "--json"],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert secret not in result.stdout + result.stderr
        return json.loads(result.stdout)

    first = render_on("machine-a", REELFLOW_URL_EXPIRY_S="3600")
    assert first["generated"] == len(first["nodes"])
    assert dict(parse_qsl(urlsplit(first["url"]).query))["X-Amz-Expires"] == "3600"
    assert json.loads(Path(first["manifest"]).read_text())["url"] == first["url"]
    with urllib.request.urlopen(first["url"], timeout=10) as response:
        assert response.read() == Path(first["video"]).read_bytes()

    since = len(s3.requests)
    again = render_on("machine-b", REELFLOW_GCS_URL_EXPIRY_S="600")  # the setting's old name
    made = {node["id"]: node["status"] for node in again["nodes"]}
    assert made.pop("publish") == "generated"  # its own out folder: a copy, nothing paid
    assert set(made.values()) == {"cached"} and again["cost_usd"] == 0
    assert dict(parse_qsl(urlsplit(again["url"]).query))["X-Amz-Expires"] == "600"
    # Machine B paid for nothing, and published only its own manifest and history (its own
    # folder's) beside the same video.
    name = Path(first["video"]).parent.name
    assert sorted(path.rsplit("/", 2)[1] + "/" + path.rsplit("/", 1)[1]
                  for path, status, _ in puts(s3, since)
                  if status == 200 and "/.reelflow-probe/" not in path) == [
        f"kept/{name}.json", f"{name}/history.json", f"{name}/manifest.json"]

    client = s3.client()
    for name in (store, videos):
        target = BucketTarget.parse(name)
        for item in client.list_objects_v2(Bucket=target.bucket).get("Contents", []):
            body = client.get_object(Bucket=target.bucket, Key=item["Key"])["Body"].read()
            assert secret.encode() not in body, item["Key"]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
