"""A fake HTTPS API on 127.0.0.1: routes that answer like the real service, scripted faults,
and a log of every request, so tests drive the real SDKs through their base URLs.

    server = FakeServer(tls)
    server.route("POST", r"/v1/things", lambda request: Response.json({"ok": True}))
    server.fail("POST", r"/v1/things", [Response.json({}, status=429, headers={"Retry-After": "0"}), RESET])
    with server:
        ... base_url=server.url ...
    server.calls("POST", r"/v1/things")  # what reached it, faults included
    server.chaos(decide)  # or: decide each request's fate (a soak's random faults)
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match | None = None

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> Response:
        return cls(status, json.dumps(data).encode(),
                   {"Content-Type": "application/json", **(headers or {})})


RESET = "reset"  # close the connection without answering
HANG = "hang"  # accept the request and never answer (until the server stops)

Handler = Callable[[Request], Response]
# Decides a request's fate given `answer`, which runs its route: a Response, RESET or HANG
# returned without calling `answer` is a fault before any work; a changed copy of what `answer`
# returned is a reply broken on its way back, after the work was done (and billed).
Chaos = Callable[[Request, Callable[[], Response]], Response | str]


class TlsCert:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost, made at test time."""

    def __init__(self, folder: Path):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reelflow fake")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert_file = folder / "fake-cert.pem"
        self.key_file = folder / "fake-key.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))


class FakeServer:
    def __init__(self, tls: TlsCert):
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self._faults: list[tuple[str, re.Pattern, list]] = []
        self._chaos: Chaos | None = None
        self._log: list[Request] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern), handler))

    def fail(self, method: str, pattern: str, faults: list) -> None:
        """Answer the next len(faults) matching requests with these, then route normally."""
        self._faults.append((method, re.compile(pattern), list(faults)))

    def chaos(self, decide: Chaos | None) -> None:
        """Let `decide` answer every request that no scripted fault answers (None: route)."""
        self._chaos = decide

    def calls(self, method: str | None = None, pattern: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self._log
                    if (method is None or r.method == method) and re.search(pattern, r.path)]

    def wait_for_calls(self, method: str, pattern: str, count: int,
                       timeout: float = 120) -> list[Request]:
        """Block until `count` matching requests have arrived (or fail after `timeout` s)."""
        def arrived():
            return [r for r in self._log if r.method == method and re.search(pattern, r.path)]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(arrived()) >= count, timeout):
                raise TimeoutError(f"{len(arrived())} of {count} {method} {pattern} arrived")
            return arrived()

    def __enter__(self) -> FakeServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_fault(self, request: Request):
        with self._lock:
            for method, pattern, faults in self._faults:
                if faults and method == request.method and pattern.search(request.path):
                    return faults.pop(0)
        return None

    def _answer(self, request: Request) -> Response | str:
        """A scripted fault, else what chaos decides, else the route's answer."""
        fault = self._next_fault(request)
        if fault is not None:
            return fault
        if self._chaos is not None:
            return self._chaos(request, lambda: self._dispatch(request))
        return self._dispatch(request)

    def _dispatch(self, request: Request) -> Response:
        for method, pattern, handler in self._routes:
            match = pattern.search(request.path)
            if method == request.method and match:
                request.match = match
                return handler(request)
        return Response.json({"error": {"code": 404, "message": f"no route {request.path}"}},
                             status=404)

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet: tests read server.calls() instead
                pass

            def _serve(self):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, url.path, parse_qs(url.query),
                                  {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length) if length else b"")
                with server._arrived:
                    server._log.append(request)
                    server._arrived.notify_all()
                answer = server._answer(request)
                if answer == RESET:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if answer == HANG:
                    server._stopping.wait()
                    self.close_connection = True
                    return
                response = answer
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Handler
