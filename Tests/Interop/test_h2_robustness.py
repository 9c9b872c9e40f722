"""Malformed, abusive and slow HTTP/2 clients (the `h2` package and hand-made frames over raw
sockets) against portal-test-server. Every test gets a server of its own (the `server` fixture),
which must still answer a normal grpcio unary call afterwards and exit 0 on SIGTERM."""

from __future__ import annotations

import socket
import time

import h2.exceptions
import h2.settings
import pytest

import support
from support import (
    ENHANCE_YOUR_CALM,
    FLAG_END_HEADERS,
    FLAG_END_STREAM,
    FRAME_CONTINUATION,
    FRAME_DATA,
    FRAME_HEADERS,
    FRAME_PING,
    FRAME_SETTINGS,
    MIB,
    RawFrameConnection,
    RawH2Client,
    grpc_frame,
    grpc_request_headers,
    h2_frame,
)

P = support.protos()
E = P.echo

GET = "/portal.testing.v1.Echo/Get"
EXPAND = "/portal.testing.v1.Echo/Expand"


@pytest.fixture
def server(fresh_test_server, request):
    """A portal-test-server of the test's own; afterwards it must still answer a normal grpcio call."""
    yield fresh_test_server
    if fresh_test_server.is_running():  # a crash is reported by the server's own teardown
        support.assert_server_healthy(fresh_test_server, f"after {request.node.name}")


def echo_request(**fields) -> bytes:
    return E.EchoRequest(**fields).SerializeToString()


def raw_call(server, headers: list, body: bytes, timeout: float = 10.0) -> support.StreamResult:
    """One request on a new raw h2 connection; waits for the stream to finish."""
    with RawH2Client(server.port) as client:
        stream_id = client.request(headers, body)
        result = client.wait_for(stream_id, timeout)
        assert result.done, f"no complete response within {timeout}s: {result.describe()} goaway={client.goaway}"
        return result


def wait_for_idle_handlers(server, timeout: float = 5.0):
    """Polls Echo/Stats over grpcio until no Echo handler is running; returns the last stats."""
    channel = support.make_channel(server.port)
    try:
        stub = P.echo_grpc.EchoStub(channel)
        deadline = time.monotonic() + timeout
        stats = stub.Stats(E.StatsRequest(), timeout=5)
        while stats.calls_active != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            stats = stub.Stats(E.StatsRequest(), timeout=5)
        return stats
    finally:
        channel.close()


# --------------------------------------------------------------------------------------------
# Broken connections


def test_garbage_instead_of_preface_closes_connection(server):
    """Bytes that are not the HTTP/2 client preface make the server close the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GARBAGE-NOT-HTTP2 \x00\x01\x02 " * 8 + b"\r\n\r\n")
        closed, received = support.read_until_closed(sock, timeout=5)
    assert closed, f"server kept the connection open after a garbage preface (sent us {received[:100]!r})"
    for code in support.goaway_codes(received):
        assert code != 0, "GOAWAY after a garbage preface should carry an error code"
    support.assert_server_healthy(server, "after a garbage preface")


def test_http1_request_is_rejected(server):
    """An HTTP/1.1 request on the HTTP/2-only port is refused and the connection closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /portal.testing.v1.Echo/Get HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        closed, received = support.read_until_closed(sock, timeout=5)
    assert closed, f"connection left open after an HTTP/1.1 request (received {received[:100]!r})"
    assert b"200 OK" not in received
    support.assert_server_healthy(server, "after an HTTP/1.1 request")


def test_truncated_frame_then_close_is_harmless(server):
    """A frame cut short by the client closing the connection is cleaned up without effect."""
    with RawFrameConnection(server.port) as raw:
        raw.handshake()
        raw.send(h2_frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, b"\x82\x86" + b"\x00" * 8, length=100))
    support.assert_server_healthy(server, "after a truncated frame")


def test_connection_closed_mid_request_releases_the_handler(server):
    """A client vanishing in the middle of a request body leaves no Echo handler running."""
    with RawH2Client(server.port) as client:
        stream_id = client.start_request(grpc_request_headers(path="/portal.testing.v1.Echo/Collect"))
        client.conn.send_data(stream_id, grpc_frame(echo_request(message="first")))
        client.flush()
        client.send_raw(h2_frame(FRAME_DATA, 0, stream_id, b"\x00\x00\x00\x01\x00abc", length=1000))
        client.drain(0.3)
    stats = wait_for_idle_handlers(server)
    assert stats.calls_active == 0, f"handler still running after the client disconnected: {stats}"
    support.assert_server_healthy(server, "after a client vanished mid-request")


# --------------------------------------------------------------------------------------------
# Malformed gRPC requests


def test_length_prefix_longer_than_data_is_internal(server):
    """A message whose length prefix announces more bytes than arrive before END_STREAM fails INTERNAL."""
    payload = echo_request(message="short")
    result = raw_call(server, grpc_request_headers(GET), grpc_frame(payload, announced_length=len(payload) + 100))
    assert result.reset_code is None, f"stream reset instead of a gRPC status: {result.describe()}"
    assert result.http_status == 200, result.describe()
    assert result.grpc_status == 13, f"expected grpc-status 13 (INTERNAL): {result.describe()}"


def test_compressed_flag_without_encoding_is_internal(server):
    """A message flagged compressed when no grpc-encoding was declared fails INTERNAL."""
    result = raw_call(server, grpc_request_headers(GET), grpc_frame(echo_request(message="x"), compressed=True))
    assert result.reset_code is None, f"stream reset instead of a gRPC status: {result.describe()}"
    assert result.grpc_status == 13, f"expected grpc-status 13 (INTERNAL): {result.describe()}"


def test_unsupported_encoding_is_unimplemented_with_accept_encoding(server):
    """grpc-encoding: snappy fails UNIMPLEMENTED and the response names the encodings it accepts."""
    headers = grpc_request_headers(GET, extra=[("grpc-encoding", "snappy")])
    result = raw_call(server, headers, grpc_frame(b"\x11snappy-compressed?", compressed=True))
    assert result.reset_code is None, f"stream reset instead of a gRPC status: {result.describe()}"
    assert result.grpc_status == 12, f"expected grpc-status 12 (UNIMPLEMENTED): {result.describe()}"
    accepted = [value for key, value in result.all_headers() if key == "grpc-accept-encoding"]
    assert accepted and accepted[0].strip(), f"no grpc-accept-encoding header: {result.describe()}"
    assert "snappy" not in accepted[0]


@pytest.mark.parametrize(
    "payload",
    [b"\x0a\x64ab", b"\x00\x00", b"\x08" + b"\xff" * 11],
    ids=["truncated-string", "field-number-zero", "overlong-varint"],
)
def test_invalid_protobuf_is_invalid_argument(server, payload):
    """Bytes that do not parse as an EchoRequest fail INVALID_ARGUMENT, naming the request type."""
    result = raw_call(server, grpc_request_headers(GET), grpc_frame(payload))
    assert result.reset_code is None, f"stream reset instead of a gRPC status: {result.describe()}"
    assert result.grpc_status == 3, f"expected grpc-status 3 (INVALID_ARGUMENT): {result.describe()}"
    assert "EchoRequest" in (result.grpc_message or ""), f"message does not name the request: {result.grpc_message!r}"


def test_non_grpc_content_type_is_http_415(server):
    """content-type: text/plain is answered with HTTP 415 Unsupported Media Type."""
    headers = grpc_request_headers(GET, content_type="text/plain")
    result = raw_call(server, headers, grpc_frame(echo_request(message="plain")))
    assert result.http_status == 415, f"expected HTTP 415: {result.describe()}"
    support.assert_server_healthy(server, "after a text/plain request")


def test_get_instead_of_post_is_rejected(server):
    """A GET request is refused (non-200 HTTP status, non-zero grpc-status, or a reset), not served."""
    headers = grpc_request_headers(GET, **{":method": "GET"})
    with RawH2Client(server.port) as client:
        stream_id = client.start_request(headers, end_stream=True)
        result = client.wait_for(stream_id, 10)
    assert result.done, f"no answer to a GET request: {result.describe()}"
    refused = result.reset_code is not None or result.http_status != 200 or result.grpc_status not in (None, 0)
    assert refused, f"GET was served like a POST: {result.describe()}"
    assert result.grpc_status != 0 or result.http_status != 200
    support.assert_server_healthy(server, "after a GET request")


def test_status_message_is_percent_encoded_on_the_wire(server):
    """grpc-message is printable ASCII on the wire, with non-ASCII bytes and '%' percent-encoded."""
    message = "café 100% ✓"
    result = raw_call(server, grpc_request_headers(GET), grpc_frame(echo_request(message=message, fail_with_code=9)))
    raw = result.final("grpc-message")
    assert raw is not None, result.describe()
    assert all(0x20 <= ord(c) <= 0x7E for c in raw), f"grpc-message not printable ASCII: {raw!r}"
    assert "100%25" in raw, f"'%' not percent-encoded: {raw!r}"
    assert support.grpc_status_message(raw) == message
    assert result.grpc_status == 9


def test_request_metadata_with_binary_values_unpadded_and_padded(server):
    """-bin metadata is accepted with and without base64 padding (both are allowed on the wire)."""
    headers = grpc_request_headers(GET, extra=[("x-unpadded-bin", "AAH+/w"), ("x-padded-bin", "AAH+/w==")])
    result = raw_call(server, headers, grpc_frame(echo_request(message="bin")))
    assert result.grpc_status == 0, result.describe()
    (flag, body), = result.messages
    seen = dict(E.EchoResponse.FromString(body).seen_metadata)
    assert seen.get("x-unpadded-bin") == "AAH+/w==", seen
    assert seen.get("x-padded-bin") == "AAH+/w==", seen


@pytest.mark.parametrize("body", [b"", "two"], ids=["no-message", "two-messages"])
def test_unary_call_without_exactly_one_message_fails(server, body):
    """A unary request stream with zero or two messages is answered with an error status."""
    if body == "two":
        body = grpc_frame(echo_request(message="one")) + grpc_frame(echo_request(message="two"))
    result = raw_call(server, grpc_request_headers(GET), body)
    assert result.grpc_status not in (None, 0), f"expected an error status: {result.describe()}"
    support.assert_server_healthy(server)


def test_server_enforces_grpc_timeout(server):
    """The server itself ends a call with DEADLINE_EXCEEDED once grpc-timeout passes, even if the client waits."""
    headers = grpc_request_headers(GET, extra=[("grpc-timeout", "200m")])
    started = time.monotonic()
    with RawH2Client(server.port) as client:
        stream_id = client.request(headers, grpc_frame(echo_request(message="slow", delay_ms=5000)))
        result = client.wait_for(stream_id, 5)
    elapsed = time.monotonic() - started
    assert result.grpc_status == 4, f"expected grpc-status 4 (DEADLINE_EXCEEDED): {result.describe()}"
    assert elapsed < 2.0, f"a 200 ms grpc-timeout ended the call after {elapsed:.2f} s"
    stats = wait_for_idle_handlers(server, timeout=2)
    assert stats.calls_active == 0 and stats.calls_cancelled >= 1, stats


@pytest.mark.parametrize("timeout", ["99999999H", "99999999M", "99999999S", "99999999m", "99999999u"])
def test_largest_grpc_timeout_values_are_accepted(server, timeout):
    """The largest grpc-timeout of each unit (8 digits, valid per the spec) is honoured, not a crash."""
    headers = grpc_request_headers(GET, extra=[("grpc-timeout", timeout)])
    with RawH2Client(server.port) as client:
        stream_id = client.request(headers, grpc_frame(echo_request(message="patient")))
        result = client.wait_for(stream_id, 10)
    server.assert_running(f"after a request with grpc-timeout: {timeout}")
    assert result.grpc_status == 0, f"grpc-timeout {timeout}: {result.describe()}"


@pytest.mark.parametrize(
    "case",
    ["unknown-method", "compressed-without-encoding", "unsupported-encoding", "length-prefix-too-long"],
)
def test_request_id_header_on_runtime_rejections(server, case):
    """Calls the runtime rejects before or around the handler still carry the client's x-request-id."""
    extra = [("x-request-id", f"reject-{case}")]
    body = grpc_frame(echo_request(message="r"))
    path = GET
    if case == "unknown-method":
        path = "/portal.testing.v1.Echo/NoSuchMethod"
    elif case == "compressed-without-encoding":
        body = grpc_frame(echo_request(message="r"), compressed=True)
    elif case == "unsupported-encoding":
        extra.append(("grpc-encoding", "snappy"))
        body = grpc_frame(b"zz", compressed=True)
    else:
        body = grpc_frame(echo_request(message="r"), announced_length=50)
    result = raw_call(server, grpc_request_headers(path, extra=extra), body)
    assert result.grpc_status not in (None, 0), result.describe()
    ids = [value for key, value in result.all_headers() if key == "x-request-id"]
    assert ids == [f"reject-{case}"], f"x-request-id missing or wrong on a rejected call: {result.describe()}"


# --------------------------------------------------------------------------------------------
# Floods and resource exhaustion


def test_rapid_reset_burst_is_contained(server):
    """2,000 streams opened and reset at once: the server keeps going or answers GOAWAY(ENHANCE_YOUR_CALM)."""
    with RawH2Client(server.port) as client:
        client.drain(0.2)  # the server's SETTINGS
        burst = bytearray()
        for i in range(2000):
            stream_id = client.conn.get_next_available_stream_id()
            client.conn.send_headers(stream_id, grpc_request_headers(GET))
            client.conn.reset_stream(stream_id, error_code=8)  # CANCEL
            burst += client.conn.data_to_send()
        sent_all = True
        try:
            for offset in range(0, len(burst), 64 * 1024):
                client.send_raw(bytes(burst[offset : offset + 64 * 1024]))
        except OSError:
            sent_all = False
        client.drain(1.0)
        if client.goaway is not None:
            assert client.goaway.error_code == ENHANCE_YOUR_CALM, (
                f"rapid reset answered with GOAWAY {client.goaway.error_code!r}, expected ENHANCE_YOUR_CALM"
            )
        else:
            assert not client.closed and sent_all, "connection closed during a rapid reset burst without GOAWAY"
            stream_id = client.request(grpc_request_headers(GET), grpc_frame(echo_request(message="after burst")))
            result = client.wait_for(stream_id, 10)
            assert result.grpc_status == 0, f"connection unusable after the burst: {result.describe()}"
    stats = wait_for_idle_handlers(server)
    assert stats.calls_active == 0, f"handlers left running after rapid reset: {stats}"
    support.assert_server_healthy(server, "after a rapid reset burst")


def _flood(server, frame: bytes, count: int) -> RawFrameConnection:
    raw = RawFrameConnection(server.port, timeout=10)
    raw.handshake()
    raw.send(frame * count)  # never reads the replies
    time.sleep(0.5)
    raw.close()
    return raw


def test_ping_flood_is_survived(server):
    """10,000 PINGs from a client that never reads the ACKs do not hurt the server."""
    before = server.rss()
    _flood(server, h2_frame(FRAME_PING, 0, 0, b"pingpong"), 10_000)
    support.assert_server_healthy(server, "after a PING flood")
    growth = server.rss() - before
    assert growth < 64 * MIB, f"resident memory grew by {growth / MIB:.0f} MiB after a PING flood"


def test_settings_flood_is_survived(server):
    """10,000 SETTINGS frames from a client that never reads the ACKs do not hurt the server."""
    before = server.rss()
    settings = (0x3).to_bytes(2, "big") + (100).to_bytes(4, "big") + (0x4).to_bytes(2, "big") + (65535).to_bytes(4, "big")
    _flood(server, h2_frame(FRAME_SETTINGS, 0, 0, settings), 10_000)
    support.assert_server_healthy(server, "after a SETTINGS flood")
    growth = server.rss() - before
    assert growth < 64 * MIB, f"resident memory grew by {growth / MIB:.0f} MiB after a SETTINGS flood"


def test_continuation_flood_is_refused_or_answered(server):
    """HEADERS followed by 50 CONTINUATION frames (~800 KB of headers) gets a definite answer, no crash."""
    with RawFrameConnection(server.port) as raw:
        raw.handshake()
        block = raw.encode_headers(
            grpc_request_headers(GET) + [(f"x-flood-{i:02d}", "c" * 15_000) for i in range(50)]
        )
        step = -(-len(block) // 51)  # 51 pieces: HEADERS + 50 CONTINUATION, each under 16 KiB
        pieces = [block[i : i + step] for i in range(0, len(block), step)]
        assert len(pieces) == 51 and step <= 16_384, (len(pieces), step)
        frames = [h2_frame(FRAME_HEADERS, 0, 1, pieces[0])]
        for index, piece in enumerate(pieces[1:]):
            flags = FLAG_END_HEADERS if index == len(pieces) - 2 else 0
            frames.append(h2_frame(FRAME_CONTINUATION, flags, 1, piece))
        frames.append(h2_frame(FRAME_DATA, FLAG_END_STREAM, 1, grpc_frame(echo_request(message="flood"))))
        raw.send(b"".join(frames))
        answered = raw.read_until(lambda: raw.stream_finished(1) or raw.goaway_codes(), timeout=10)
        answered = answered or raw.closed
        assert answered, f"no answer, reset, GOAWAY or close within 10 s (frames: {[f.type for f in raw.frames]})"
    support.assert_server_healthy(server, "after a CONTINUATION flood")


def test_thousand_large_metadata_headers_are_refused(server):
    """A request with 1,000 metadata headers of 1 KB each (~1 MB) is refused, without a crash."""
    headers = grpc_request_headers(GET, extra=[(f"x-meta-{i:04d}", f"{i:04d}" + "m" * 1020) for i in range(1000)])
    with RawH2Client(server.port) as client:
        client.drain(0.2)
        outcome = "unknown"
        try:
            stream_id = client.request(headers, grpc_frame(echo_request(message="huge headers")))
            result = client.wait_for(stream_id, 10)
            if result.grpc_status == 0:
                outcome = "served"
            elif result.done or client.goaway is not None or client.closed:
                outcome = "refused"
            else:
                outcome = "no answer"
            detail = f"{result.describe()} goaway={client.goaway}"
        except (OSError, h2.exceptions.H2Error) as error:
            outcome, detail = "refused", f"connection closed or stream reset while sending: {error!r}"
    assert outcome == "refused", f"1 MB of metadata was {outcome}: {detail}"
    support.assert_server_healthy(server, "after 1,000 large metadata headers")


def test_slow_reader_does_not_make_the_server_buffer(server):
    """A client that grants no flow-control window for 3 s of a 128 MiB Expand holds server memory flat."""
    count, size = 2000, 64 * 1024
    with RawH2Client(server.port, auto_ack=False) as client:
        client.drain(0.2)
        time.sleep(0.3)
        before = server.rss()
        headers = grpc_request_headers(EXPAND)
        stream_id = client.request(headers, grpc_frame(echo_request(message="slow", response_count=count, response_size=size)), keep_messages=False)
        peak = before
        stop = time.monotonic() + 3.0
        while time.monotonic() < stop:
            peak = max(peak, server.rss())
            time.sleep(0.05)
        growth = peak - before
        assert growth < 64 * MIB, f"server memory grew by {growth / MIB:.0f} MiB while the client did not read"

        # Now read everything: large windows, and acknowledge what arrives.
        client.auto_ack = True
        client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 * MIB})
        client.conn.increment_flow_control_window(64 * MIB)
        client.flush()
        result = client.wait_for(stream_id, timeout=90)
    assert result.done, f"Expand did not finish once the client read: {result.describe()}"
    assert result.grpc_status == 0, result.describe()
    assert result.message_count == count, result.describe()
    assert result.payload_bytes >= count * size, result.describe()
    support.assert_server_healthy(server, "after a slow reader")
