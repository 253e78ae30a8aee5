"""Google Cloud pieces for tests: gcp-storage-emulator on a free loopback port, and throwaway
service-account keys (made at test time, never committed) for signing URLs and for ADC."""

from __future__ import annotations

import http.server
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gcp_storage_emulator.server import create_server


@contextmanager
def storage_emulator() -> Iterator[str]:
    """An in-memory GCS emulator in this process; yields its http://127.0.0.1:PORT."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True)
    # The emulator serves one request at a time with the stdlib's listen queue of 5: under a
    # cluster's bursts the kernel drops connection attempts and clients stall a second.
    with mock.patch.object(http.server.HTTPServer, "request_queue_size", 128):
        server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


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
