"""An S3 API server on loopback for tests: moto's S3 (a real server speaking S3's wire protocol,
conditional writes and checksums included) in this process, behind a recorder that counts
requests at the server, and able to play a service that ignores or refuses conditional writes.

moto keeps its buckets in process-global state, so every test makes a bucket of its own
(`new_bucket`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import boto3
import pytest
from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                           create_backend_app)
from werkzeug.serving import make_server

_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH")
_ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                  b'<Message>Access Denied</Message></Error>')
_RACING = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict'
           b'</Code><Message>A conflicting conditional operation is currently in progress against '
           b'this resource. Please try again.</Message></Error>')
_NOT_IMPLEMENTED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code>'
                    b'<Message>A header you provided implies functionality that is not '
                    b'implemented</Message></Error>')


@dataclass
class S3Fake:
    endpoint: str  # http://127.0.0.1:PORT
    # (method, path, status, If-None-Match or If-Match sent) of every request answered, in order
    requests: list[tuple[str, str, int, str]] = field(default_factory=list)
    # what the server does with If-None-Match / If-Match on writes: as S3 does, drops them
    # (a service that ignores them), or answers 501 (a service that refuses them)
    conditions: Literal["honour", "ignore", "refuse"] = "honour"
    denied: set[str] = field(default_factory=set)  # HTTP methods answered 403 AccessDenied
    racing: int = 0  # the next conditional PUTs answered 409, as while another is in flight

    def writes(self, key: str) -> int:
        """Successful PUTs of objects whose path ends with `key`."""
        return sum(1 for method, path, status, _ in self.requests
                   if method == "PUT" and path.endswith(key) and status == 200)

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def new_bucket(self, prefix: str = "reelflow") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args) -> None:  # the recorder keeps what a test needs
        pass


@contextmanager
def s3_fake() -> Iterator[S3Fake]:
    fake = S3Fake("")
    moto = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def app(environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        condition = next((environ[name] for name in _CONDITIONS if name in environ), "")

        def record(status: int) -> None:
            with lock:
                fake.requests.append((method, path, status, condition))

        def answer(status: str, body: bytes):
            record(int(status.split()[0]))
            body = b"" if method == "HEAD" else body
            start_response(status, [("Content-Type", "application/xml"),
                                    ("Content-Length", str(len(body)))])
            return [body]

        if method in fake.denied:
            return answer("403 Forbidden", _ACCESS_DENIED)
        if condition and method in ("PUT", "DELETE"):
            if fake.racing and method == "PUT":
                fake.racing -= 1
                return answer("409 Conflict", _RACING)
            if fake.conditions == "refuse":
                return answer("501 Not Implemented", _NOT_IMPLEMENTED)
            if fake.conditions == "ignore":
                for name in _CONDITIONS:
                    environ.pop(name, None)

        def recording_start_response(status, headers, *args):
            record(int(status.split()[0]))
            return start_response(status, headers, *args)

        return moto(environ, recording_start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    fake.endpoint = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join()


def use_s3(monkeypatch: pytest.MonkeyPatch, fake: S3Fake) -> dict[str, str]:
    """Point the SDK and reelflow at the fake for the rest of the test: test credentials, no
    shared config files, no instance metadata (no request leaves 127.0.0.1). The variables
    set, for a subprocess's environment."""
    variables = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                 "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                 "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                 "REELFLOW_S3_ENDPOINT_URL": fake.endpoint, "REELFLOW_S3_ADDRESSING_STYLE": "path"}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return variables
