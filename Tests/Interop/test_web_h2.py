"""The gateway's web listener over HTTP/2 with prior knowledge (h2c), under the abusive-client cases of
the gRPC robustness suite that apply to plain HTTP: resets, floods, oversized headers and bodies,
garbage. The listener must answer what it can, refuse the rest, and keep serving afterwards.
Only the listener is under test here: the gateway's backends are never called (an unauthenticated
call and the static pages need none)."""

from __future__ import annotations

import http.client
import json
import socket
import time

import h2.exceptions
import pytest

import support
from support import FLAG_END_HEADERS, FLAG_END_STREAM, FRAME_CONTINUATION, FRAME_DATA, FRAME_HEADERS, FRAME_PING, FRAME_SETTINGS
from support import MIB, RawFrameConnection, RawH2Client, h2_frame

WHOAMI = "/portal.gateway.v1.PortalService/WhoAmI"


@pytest.fixture
def web(start_server, portal_bin):
    """A gateway with a web listener, its backends nowhere; yields (process, web port)."""
    port = support.free_port()
    nowhere = f"127.0.0.1:{support.free_port()}"
    process = start_server([portal_bin, "gateway", "--web-port", str(port), "--identity-address", nowhere,
                            "--entitlements-address", nowhere, "--audit-address", nowhere], name="web-gateway")
    support.wait_until(lambda: _answers(port), timeout=10)
    yield process, port
    if process.is_running():
        assert_web_healthy(process, port)


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/")
        return connection.getresponse().status == 200
    except OSError:
        return False


def assert_web_healthy(process, port: int) -> None:
    """The process runs and the listener answers both protocols."""
    process.assert_running("web listener")
    assert _answers(port), "the web listener no longer answers HTTP/1.1"
    with RawH2Client(port) as client:
        result = client.wait_for(client.request(headers(WHOAMI), b"{}", plain=True), 10)
        assert result.http_status == 401, result.describe()


def headers(path: str, method: str = "POST", extra: list | None = None) -> list:
    fields = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path)]
    if method == "POST":
        fields += [("content-type", "application/json"), ("connect-protocol-version", "1")]
    return fields + (extra or [])


def test_connect_json_and_pages_over_h2c(web):
    _, port = web
    with RawH2Client(port) as client:
        call = client.request(headers(WHOAMI), b"{}", plain=True)
        page = client.request(headers("/", "GET"), plain=True)
        called, served = client.wait_for(call, 10), client.wait_for(page, 10)
    assert called.http_status == 401 and json.loads(bytes(called.body))["code"] == "unauthenticated", called.describe()
    assert called.header("content-security-policy") and called.header("cache-control") == "no-store"
    assert served.http_status == 200 and b"End Customer Portal" in served.body
    assert served.header("content-type") == "text/html; charset=utf-8"
    assert served.header("connection") is None, "HTTP/2 carries no connection-specific fields"


def test_many_streams_on_one_connection(web):
    _, port = web
    with RawH2Client(port) as client:
        streams = [client.request(headers(WHOAMI), b"{}", plain=True) for _ in range(50)]
        results = [client.wait_for(stream, 10) for stream in streams]
    assert all(result.http_status == 401 for result in results), [r.describe() for r in results if r.http_status != 401]


def test_an_oversized_body_is_refused_with_413(web):
    _, port = web
    with RawH2Client(port) as client:
        stream = client.start_request(headers(WHOAMI), plain=True)
        try:
            client.send_body(stream, b" " * (5 * MIB))
        except (ConnectionError, h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        result = client.wait_for(stream, 10)
    assert result.http_status == 413, result.describe()


def test_rapid_reset_burst_is_contained(web):
    _, port = web
    with RawH2Client(port) as client:
        client.drain(0.2)
        burst = bytearray()
        for _ in range(2000):
            stream_id = client.conn.get_next_available_stream_id()
            client.conn.send_headers(stream_id, headers(WHOAMI))
            client.conn.reset_stream(stream_id, error_code=8)
            burst += client.conn.data_to_send()
        try:
            for offset in range(0, len(burst), 64 * 1024):
                client.send_raw(bytes(burst[offset:offset + 64 * 1024]))
        except OSError:
            pass
        client.drain(1.0)
        if client.goaway is not None:
            assert client.goaway.error_code == support.ENHANCE_YOUR_CALM


@pytest.mark.parametrize("frame", [h2_frame(FRAME_PING, 0, 0, b"pingpong"),
                                   h2_frame(FRAME_SETTINGS, 0, 0, (0x3).to_bytes(2, "big") + (100).to_bytes(4, "big"))],
                         ids=["ping", "settings"])
def test_floods_are_survived(web, frame):
    process, port = web
    before = process.rss()
    raw = RawFrameConnection(port, timeout=10)
    raw.handshake()
    raw.send(frame * 10_000)
    time.sleep(0.5)
    raw.close()
    assert process.rss() - before < 64 * MIB


def test_continuation_flood_and_huge_headers_are_refused(web):
    _, port = web
    with RawFrameConnection(port) as raw:
        raw.handshake()
        block = raw.encode_headers(headers(WHOAMI) + [(f"x-flood-{i:02d}", "c" * 15_000) for i in range(50)])
        step = -(-len(block) // 51)
        pieces = [block[i:i + step] for i in range(0, len(block), step)]
        frames = [h2_frame(FRAME_HEADERS, 0, 1, pieces[0])]
        for index, piece in enumerate(pieces[1:]):
            frames.append(h2_frame(FRAME_CONTINUATION, FLAG_END_HEADERS if index == len(pieces) - 2 else 0, 1, piece))
        frames.append(h2_frame(FRAME_DATA, FLAG_END_STREAM, 1, b"{}"))
        raw.send(b"".join(frames))
        answered = raw.read_until(lambda: raw.stream_finished(1) or raw.goaway_codes(), timeout=10) or raw.closed
        assert answered


def test_garbage_is_answered_400_and_closed(web):
    _, port = web
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GARBAGE \x00\x01\x02\r\n\r\n")
        closed, received = support.read_until_closed(sock, timeout=5)
    assert closed and received.startswith(b"HTTP/1.1 400"), received[:100]


def test_https_negotiates_h2_or_http11_and_sends_hsts(start_server, portal_bin, tmp_path):
    """With the gateway's certificate the web listener serves HTTPS only: ALPN picks h2 when the
    browser offers it, else HTTP/1.1; responses carry HSTS."""
    import ssl

    from test_tls import dev_certs
    certs = dev_certs(tmp_path / "certs")
    port, nowhere = support.free_port(), f"127.0.0.1:{support.free_port()}"
    start_server([portal_bin, "gateway", "--web-port", str(port), "--tls-cert", str(certs / "gateway.crt"),
                  "--tls-key", str(certs / "gateway.key"), "--identity-address", nowhere, "--entitlements-address", nowhere,
                  "--audit-address", nowhere], name="tls-web-gateway")
    for offered, chosen in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1"), (None, None)):
        context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        if offered:
            context.set_alpn_protocols(offered)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() == chosen, (offered, tls.selected_alpn_protocol())
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=5)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("strict-transport-security") == "max-age=31536000"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        closed, received = support.read_until_closed(sock, timeout=5)
    assert closed and b"200 OK" not in received, "no cleartext beside HTTPS"
