"""Google Cloud pieces for tests: gcp-storage-emulator on a free loopback port, made to honour
`ifGenerationMatch` as GCS does, and throwaway service-account keys (made at test time, never
committed) for signing URLs and for ADC."""

from __future__ import annotations

import functools
import http.server
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gcp_storage_emulator import server as emulator_server
from gcp_storage_emulator.exceptions import NotFound


@dataclass
class GcsFake:
    url: str  # http://127.0.0.1:PORT, for STORAGE_EMULATOR_HOST
    written: list[str] = field(default_factory=list)  # gs://bucket/name of every object write
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, unquoted path)


@contextmanager
def gcs_fake() -> Iterator[GcsFake]:
    """An in-memory GCS emulator in this process that answers 412 where GCS would.

    gcp-storage-emulator ignores preconditions; here a request carrying `ifGenerationMatch`
    (0: the object must not exist) is refused with 412 when the object's live generation
    differs, for writes (every upload kind: the check runs where the object is stored, so a
    resumable upload is judged when it completes), deletes, metadata reads and downloads. The
    emulator serves one request at a time, so a check and the write it guards are atomic.
    Other preconditions are refused with 501 rather than silently ignored.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = GcsFake(f"http://127.0.0.1:{port}")
    server = emulator_server.create_server("127.0.0.1", port, in_memory=True)
    # The emulator serves one request at a time with the stdlib's listen queue of 5: under a
    # cluster's bursts the kernel drops connection attempts and clients stall a second.
    # Its thread builds its HTTP server while start() waits, so the handler is patched in then.
    with mock.patch.object(http.server.HTTPServer, "request_queue_size", 128), \
            mock.patch.object(emulator_server, "RequestHandler",
                              functools.partial(_PreconditionHandler, fake)):
        server.start()
    try:
        yield fake
    finally:
        server.stop()


def new_bucket(url: str, monkeypatch, prefix: str):
    """A bucket of its own on the fake at `url`, which the store's clients reach through
    STORAGE_EMULATOR_HOST for the rest of the test."""
    import uuid

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    return client.create_bucket(f"{prefix}-{uuid.uuid4().hex[:12]}")


@contextmanager
def storage_emulator() -> Iterator[str]:
    """The GCS fake (see `gcs_fake`); yields its http://127.0.0.1:PORT."""
    with gcs_fake() as fake:
        yield fake.url


class _ConditionNotMet(Exception):
    pass


class _Unsupported(Exception):
    pass


_UNSUPPORTED = ("ifGenerationNotMatch", "ifMetagenerationMatch", "ifMetagenerationNotMatch",
                "ifSourceGenerationMatch", "ifSourceGenerationNotMatch",
                "ifSourceMetagenerationMatch", "ifSourceMetagenerationNotMatch")


class _CheckedStorage:
    """The emulator's storage for one request: the object it touches must be at `expected`."""

    def __init__(self, storage, fake: GcsFake, expected: int | None):
        self._storage, self._fake, self._expected = storage, fake, expected

    def __getattr__(self, name):
        return getattr(self._storage, name)

    def _check(self, bucket: str, name: str, creating: bool = False) -> None:
        if self._expected is None:
            return
        try:
            live = int(self._storage.get_file_obj(bucket, name)["generation"])
        except NotFound:
            if not creating:
                return  # as GCS: reading or deleting what is not there is a 404
            live = 0
        if live != self._expected:
            raise _ConditionNotMet(f"gs://{bucket}/{name} is at generation {live}, "
                                   f"not {self._expected}")

    def create_file(self, bucket, name, *args, **kwargs):
        self._check(bucket, name, creating=True)
        self._storage.create_file(bucket, name, *args, **kwargs)
        self._fake.written.append(f"gs://{bucket}/{name}")

    def delete_file(self, bucket, name):
        self._check(bucket, name)
        return self._storage.delete_file(bucket, name)

    def get_file_obj(self, bucket, name):
        self._check(bucket, name)
        return self._storage.get_file_obj(bucket, name)

    def get_file(self, bucket, name, *args, **kwargs):
        self._check(bucket, name)
        return self._storage.get_file(bucket, name, *args, **kwargs)


class _PreconditionHandler(emulator_server.RequestHandler):
    def __init__(self, fake: GcsFake, storage, *args, **kwargs):
        self._fake, self._emulator_storage = fake, storage
        super().__init__(storage, *args, **kwargs)

    def _serve(self, route) -> None:
        url = urlsplit(self.path)
        self._fake.requests.append((self.command, unquote(url.path)))
        query = parse_qs(url.query)
        try:
            if unsupported := [name for name in _UNSUPPORTED if name in query]:
                raise _Unsupported(f"this fake does not enforce {', '.join(unsupported)}")
            expected = query.get("ifGenerationMatch")
            self.storage = _CheckedStorage(self._emulator_storage, self._fake,
                                           int(expected[0]) if expected else None)
            route(self)
        except _ConditionNotMet as refused:
            self._answer(HTTPStatus.PRECONDITION_FAILED, "conditionNotMet", str(refused))
        except _Unsupported as refused:
            self._answer(HTTPStatus.NOT_IMPLEMENTED, "notImplemented", str(refused))

    def _answer(self, status: HTTPStatus, reason: str, message: str) -> None:
        body = json.dumps({"error": {"code": status.value, "message": message,
                                     "errors": [{"reason": reason, "message": message}]}}).encode()
        self.close_connection = True  # the request's body may be unread
        self.send_response(status.value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._serve(emulator_server.RequestHandler.do_GET)

    def do_POST(self):
        self._serve(emulator_server.RequestHandler.do_POST)

    def do_PUT(self):
        self._serve(emulator_server.RequestHandler.do_PUT)

    def do_PATCH(self):
        self._serve(emulator_server.RequestHandler.do_PATCH)

    def do_DELETE(self):
        self._serve(emulator_server.RequestHandler.do_DELETE)


def service_account_key(path: Path, *, token_uri: str = "https://oauth2.googleapis.com/token",
                        email: str = "publisher@test-project.iam.gserviceaccount.com",
                        ) -> rsa.RSAPrivateKey:
    """Write a service-account JSON key to `path`; signing with it is local, and its token URI
    is only contacted when the key is used as credentials (point it at a fake)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "test-project", "private_key_id": "k1",
        "private_key": pem, "client_email": email, "client_id": "1", "token_uri": token_uri,
    }))
    return key
