"""Publishing to GCS (tasks/bucket_publish.py on cache.gcs_bucket), against the project's GCS fake (gcp-storage-emulator made to honour
ifGenerationMatch: tests/fakes/gcs.py) running in this process on 127.0.0.1.

Not exercised here: the branch of `_put` that handles a 412 (someone else, or a retried attempt
of ours, wrote the object between our look and our write). What the tests do prove: every
write *sends* the right precondition (read off the wire), and the look-before-write logic
keeps, replaces or refuses objects as it should, judged by the fake's object generations and
bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cache.buckets import BucketError, BucketTarget
from cache.gcs_bucket import GcsBucket, signing_credentials, storage_client
from tasks.bucket_publish import publish_to_bucket, video_url
from tests.fakes.gcs import service_account_key, storage_emulator

NAME = "how-bees-make-honey-3f2a9c1b7d4e"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection beyond this machine fails the test (the token URI, ADC's metadata server)."""
    connect = socket.socket.connect

    def local_only(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL_HOSTS:
            raise AssertionError(f"test tried to reach {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", local_only)


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    with storage_emulator() as url:
        yield url


class WireLog(requests.Session):
    """The client's HTTP session, recording each request; proxies from the environment are off."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False
        self.sent: list[tuple[str, str, bytes]] = []

    def request(self, method, url, *args, **kwargs):
        data = kwargs.get("data")
        self.sent.append((method, url, data if isinstance(data, bytes) else b""))
        return super().request(method, url, *args, **kwargs)

    def uploads(self) -> list[tuple[str, str | None]]:
        """(object name, ifGenerationMatch) of each upload, in order."""
        found = []
        for method, url, data in self.sent:
            if method == "POST" and "/upload/" in url:
                name = re.search(rb'"name": "([^"]+)"', data).group(1).decode()
                found.append((name, dict(parse_qsl(urlsplit(url).query)).get("ifGenerationMatch")))
        return found


@pytest.fixture
def wire() -> WireLog:
    return WireLog()


@pytest.fixture
def client(emulator: str, wire: WireLog, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    return storage.Client(project="test", credentials=AnonymousCredentials(), _http=wire)


@pytest.fixture
def target(client: storage.Client) -> BucketTarget:
    bucket = f"reelflow-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(bucket)
    return BucketTarget.parse(f"gs://{bucket}/videos/2026")


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, Path]:
    """A published folder as tasks/publish.py writes it."""
    root = tmp_path / NAME
    root.mkdir()
    contents = {
        "video.mp4": bytes(range(256)) * 300,
        "storyboard.json": json.dumps({"title": "How bees make honey"}).encode(),
        "subtitles.ass": b"[Script Info]\nTitle: bees\n",
        "manifest.json": json.dumps({"run": 1}).encode(),
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return {name: root / name for name in contents}


@dataclass
class Key:
    file: Path
    email: str
    public_key: rsa.RSAPublicKey


@pytest.fixture
def key(tmp_path: Path) -> Key:
    """A throwaway service-account key; its token URI is never contacted (signing is local)."""
    email = "publisher@test-project.iam.gserviceaccount.com"
    private = service_account_key(tmp_path / "key.json", email=email)
    return Key(tmp_path / "key.json", email, private.public_key())


@pytest.fixture
def signer(key: Key):
    return signing_credentials(key.file)


@dataclass(frozen=True)
class Published:
    folder: str
    uploaded: tuple[str, ...]
    video_url: str
    signed: bool


def publish(target, files, client, signer=None, expiry_s=900) -> Published:
    """As tasks/publish.py does: the video's URL first (the manifest records it), then the files."""
    bucket = GcsBucket(target, client=client, signer=signer)
    url = video_url(bucket, NAME, expiry_s)
    published = publish_to_bucket(bucket, NAME, files)
    return Published(published.folder, published.uploaded, url, signer is not None)


def objects(client: storage.Client, target: BucketTarget) -> dict[str, storage.Blob]:
    """The published objects by file name."""
    prefix = target.object_name(NAME, "") + "/"
    return {blob.name[len(prefix):]: blob
            for blob in client.list_blobs(target.bucket, prefix=prefix)}


def read(client: storage.Client, target: BucketTarget, file: str) -> bytes:
    # A fresh Blob: a download overwrites the blob's metadata from the response headers,
    # which the emulator leaves out (generation, cacheControl… become None).
    return client.bucket(target.bucket).blob(target.object_name(NAME, file)).download_as_bytes()


def generations(client, target) -> dict[str, int]:
    return {name: blob.generation for name, blob in objects(client, target).items()}


# Parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("uri, bucket, prefix", [
    ("gs://my-bucket", "my-bucket", ""),
    ("gs://my-bucket/", "my-bucket", ""),
    ("gs://reel_flow.example.com/videos/2026/", "reel_flow.example.com", "videos/2026"),
    ("gs://abc/a b/ü", "abc", "a b/ü"),
])
def test_parse_accepts_a_bucket_and_an_optional_prefix(uri, bucket, prefix):
    assert BucketTarget.parse(uri) == BucketTarget("gs", bucket, prefix)


@pytest.mark.parametrize("uri, says", [
    ("az://bucket/videos", "az:// is not supported; use gs://BUCKET/PREFIX or s3://"),
    ("bucket/videos", "not a bucket URL"),
    ("gs://", "names no bucket"),
    ("gs://ab", "3-63 characters"),
    ("gs://" + "a" * 64, "3-63 characters"),
    ("gs://My-Bucket", "only a-z 0-9"),
    ("gs://-bucket", "start and end"),
    ("gs://bucket./x", "start and end"),
    ("gs://bad..dots", "dot-separated part"),
    ("gs://goog-videos", "reserved"),
    ("gs://my-google-videos", "reserved"),
    ("gs://192.168.1.10", "IP address"),
    ("gs://bucket/a/../b", "'..'"),
    ("gs://bucket/./b", "'.'"),
    ("gs://bucket/a//b", "empty"),
    ("gs://bucket/a//", "empty"),
    ("gs://bucket/a\\b", "backslash"),
    ("gs://bucket/a\nb", "control character"),
])
def test_parse_refuses_with_a_one_line_message(uri, says):
    with pytest.raises(ValueError) as error:
        BucketTarget.parse(uri)
    assert says in str(error.value)
    assert "\n" not in str(error.value)


# Publishing ------------------------------------------------------------------------------

def test_publish_uploads_the_folder_with_content_types(client, target, folder, wire):
    published = publish(target, folder, client)

    assert published.folder == f"gs://{target.bucket}/videos/2026/{NAME}/"
    assert set(published.uploaded) == set(folder)
    found = objects(client, target)
    assert set(found) == set(folder)
    assert {name: blob.content_type for name, blob in found.items()} == {
        "video.mp4": "video/mp4", "storyboard.json": "application/json",
        "subtitles.ass": "text/x-ass", "manifest.json": "application/json",
    }
    assert found["manifest.json"].cache_control == "no-cache"
    for name, path in folder.items():
        assert read(client, target, name) == path.read_bytes()
    # Every create asks for "only if absent".
    assert {generation for _, generation in wire.uploads()} == {"0"}


def test_video_is_written_after_everything_beside_it(client, target, folder, wire):
    publish(target, folder, client)

    written = generations(client, target)
    assert written["video.mp4"] > max(g for name, g in written.items() if name != "video.mp4")
    assert wire.uploads()[-1][0].endswith("/video.mp4")


def test_republish_rewrites_only_the_changed_manifest(client, target, folder, wire):
    publish(target, folder, client)
    before = generations(client, target)
    folder["manifest.json"].write_text(json.dumps({"run": 2}))
    del wire.sent[:]

    again = publish(target, folder, client)

    after = generations(client, target)
    assert again.uploaded == ("manifest.json",)
    assert {name for name in before if after[name] != before[name]} == {"manifest.json"}
    assert read(client, target, "manifest.json") == b'{"run": 2}'
    # The replacement is conditional on the generation it replaces.
    assert wire.uploads() == [(target.object_name(NAME, "manifest.json"),
                               str(before["manifest.json"]))]


def test_republish_of_identical_files_writes_nothing(client, target, folder, wire):
    publish(target, folder, client)
    before = generations(client, target)
    del wire.sent[:]

    again = publish(target, folder, client)

    assert again.uploaded == ()
    assert wire.uploads() == []
    assert generations(client, target) == before


@pytest.mark.parametrize("file", ["video.mp4", "subtitles.ass"])
def test_different_content_under_an_existing_name_is_refused(client, target, folder, file):
    publish(target, folder, client)
    before = generations(client, target)
    folder[file].write_bytes(folder[file].read_bytes()[::-1])  # same size, other bytes
    folder["manifest.json"].write_text(json.dumps({"run": 2}))

    with pytest.raises(BucketError) as error:
        publish(target, folder, client)

    assert f"gs://{target.bucket}/{target.object_name(NAME, file)}" in str(error.value)
    assert generations(client, target) == before  # refused before anything was written


def test_a_missing_bucket_is_one_clear_error(client, folder):
    target = BucketTarget.parse(f"gs://reelflow-missing-{uuid.uuid4().hex[:8]}")

    with pytest.raises(BucketError) as error:
        publish(target, folder, client)

    message = str(error.value)
    assert message.startswith(f"upload gs://{target.bucket}/{NAME}/")
    assert "404" in message and "\n" not in message


# URLs ------------------------------------------------------------------------------------

def test_without_a_signer_the_url_is_the_public_one(client, target, folder, emulator):
    published = publish(target, folder, client)

    assert not published.signed
    assert published.video_url == f"{emulator}/{target.bucket}/videos/2026/{NAME}/video.mp4"
    with urllib.request.urlopen(published.video_url, timeout=5) as response:
        assert response.read() == folder["video.mp4"].read_bytes()


def test_with_a_signer_the_url_is_v4_signed_for_the_expiry(client, target, folder, key, signer):
    published = publish(target, folder, client, signer=signer, expiry_s=3600)

    assert published.signed
    url = urlsplit(published.video_url)
    query = dict(parse_qsl(url.query))
    assert url.path == f"/{target.bucket}/videos/2026/{NAME}/video.mp4"
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "3600"
    assert query["X-Goog-SignedHeaders"] == "host"
    email, scope = query["X-Goog-Credential"].split("/", 1)
    assert email == key.email
    # The signature checks out against the key's public half, over the string-to-sign that
    # GCS rebuilds from the URL (https://cloud.google.com/storage/docs/authentication/signatures).
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(url.query)) if k != "X-Goog-Signature")
    canonical_request = "\n".join(
        ["GET", url.path, canonical_query, f"host:{url.netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    string_to_sign = "\n".join(["GOOG4-RSA-SHA256", query["X-Goog-Date"], scope,
                                hashlib.sha256(canonical_request.encode()).hexdigest()])
    key.public_key.verify(bytes.fromhex(query["X-Goog-Signature"]),
                                  string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    # The emulator serves the URL (it does not check signatures, so this proves the path only).
    with urllib.request.urlopen(published.video_url, timeout=5) as response:
        assert response.read() == folder["video.mp4"].read_bytes()


@pytest.mark.parametrize("expiry_s", [0, 7 * 24 * 3600 + 1])
def test_an_expiry_beyond_what_v4_allows_is_refused_before_uploading(client, target, folder,
                                                                     signer, expiry_s):
    with pytest.raises(ValueError, match="url_expiry_s"):
        publish(target, folder, client, signer=signer, expiry_s=expiry_s)
    assert objects(client, target) == {}


# Clients and credentials -----------------------------------------------------------------

def test_signing_credentials_need_a_key_file():
    assert signing_credentials(None) is None


def test_storage_client_is_anonymous_on_the_emulator(emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)

    client = storage_client("test")

    assert client.api_endpoint == emulator
    assert isinstance(client._credentials, AnonymousCredentials)


def test_storage_client_uses_application_default_credentials(key, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key.file))

    client = storage_client(None)

    assert client.api_endpoint == "https://storage.googleapis.com"
    assert client.project == "test-project"
    assert client._credentials.service_account_email == key.email
