"""HTTP/3: `reelflow api --quic-bind` answers over QUIC (aioquic's client) as over HTTP/1.1."""

from __future__ import annotations

import asyncio
import json
import ssl

import httpx
from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration

from tests.fakes.server import TlsCert
from tests.test_api import _free_port, _start, _stop


class _Http3(QuicConnectionProtocol):
    """A minimal HTTP/3 client: one GET per stream, answered when its stream ends."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.answers: dict[int, tuple[asyncio.Future, dict, bytearray]] = {}

    async def get(self, authority: str, path: str, headers: dict[str, str]
                  ) -> tuple[int, dict[str, str], bytes]:
        stream = self._quic.get_next_available_stream_id()
        future = asyncio.get_running_loop().create_future()
        self.answers[stream] = (future, {}, bytearray())
        self.http.send_headers(stream, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()),
            (b":path", path.encode()),
            *[(name.lower().encode(), value.encode()) for name, value in headers.items()]],
            end_stream=True)
        self.transmit()
        _, received, body = await future
        return int(received[":status"]), received, bytes(body)

    def quic_event_received(self, event) -> None:
        for answer in self.http.handle_event(event):
            if not isinstance(answer, (HeadersReceived, DataReceived)):
                continue
            future, received, body = self.answers[answer.stream_id]
            if isinstance(answer, HeadersReceived):
                received.update((name.decode(), value.decode()) for name, value in answer.headers)
            else:
                body.extend(answer.data)
            if answer.stream_ended:
                future.set_result((future, received, body))


def test_a_request_over_quic_gets_the_same_answer_as_over_http_1_1(tmp_path, prefect_api_url):
    certificate = TlsCert(tmp_path)
    cert, key = certificate.cert_file, certificate.key_file
    quic_port = _free_port()
    api = _start(tmp_path / "api", prefect_api_url, "--no-workers", "--certfile", str(cert),
                 "--keyfile", str(key), "--quic-bind", f"127.0.0.1:{quic_port}", tls=True)
    try:
        authorization = {"Authorization": f"Bearer {api.keys[0]}"}
        with httpx.Client(base_url=api.url, verify=ssl.create_default_context(
                cafile=str(cert)), timeout=30) as tcp:
            made = tcp.post("/jobs", json={"prompt": "Fog", "scenes": 1}, headers=authorization)
            assert made.status_code == 202, made.text
            over_tcp = tcp.get(f"/jobs/{made.json()['id']}", headers=authorization)
            refused_tcp = tcp.get("/jobs")
        # HTTP/1.1 says where HTTP/3 is, as a browser learns it.
        assert over_tcp.headers["alt-svc"] == f'h3=":{quic_port}"; ma=3600'

        async def over_quic():
            configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                                              server_name="127.0.0.1")
            configuration.load_verify_locations(str(cert))
            async with connect("127.0.0.1", quic_port, configuration=configuration,
                               create_protocol=_Http3) as client:
                authority = f"127.0.0.1:{quic_port}"
                return (await client.get(authority, f"/jobs/{made.json()['id']}", authorization),
                        await client.get(authority, "/jobs", {}))

        (status, headers, body), (refused_status, _, refused_body) = asyncio.run(over_quic())
        assert headers["server"] == "hypercorn-h3"  # it came over HTTP/3
        assert status == over_tcp.status_code == 200
        assert json.loads(body) == over_tcp.json()
        assert refused_status == refused_tcp.status_code == 401
        assert json.loads(refused_body)["message"] == refused_tcp.json()["message"]
        with httpx.Client(base_url=api.url, verify=False) as tcp:  # no runner will take it later
            assert tcp.post(f"/jobs/{made.json()['id']}/cancel",
                            headers=authorization).status_code == 202
    finally:
        _stop(api)
