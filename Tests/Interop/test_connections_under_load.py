"""New connections stay quick while a server is saturated: the server's SETTINGS and a first health
check answer within a bound, whether the server is busy with calls or its log is not being read.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import grpc
import pytest

import support

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + an empty SETTINGS frame
SETTINGS_P99_LIMIT = 1.0
HEALTH_P99_LIMIT = 2.0


def time_to_settings(port: int, timeout: float = 25.0) -> float:
    """Seconds from connecting to receiving the server's first frame header (its SETTINGS)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(PREFACE)
        received = b""
        while len(received) < 9:
            chunk = sock.recv(65536)
            if not chunk:
                pytest.fail("the server closed a new connection before sending SETTINGS", pytrace=False)
            received += chunk
    assert received[3] == 0x4, f"first frame type {received[3]}, not SETTINGS"
    return time.monotonic() - started


def time_to_health(port: int) -> float:
    """Seconds for a fresh grpcio channel to connect and have Health/Check answered."""
    started = time.monotonic()
    channel = support.make_channel(port)
    try:
        assert support.health_check(channel, timeout=20).status == 1
    finally:
        channel.close()
    return time.monotonic() - started


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def probe(port: int, settings_probes: int = 60, health_probes: int = 15) -> tuple[list[float], list[float]]:
    settings = []
    for _ in range(settings_probes):
        settings.append(time_to_settings(port))
        time.sleep(0.02)
    health = [time_to_health(port) for _ in range(health_probes)]
    return settings, health


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed")
def test_new_connections_are_answered_quickly_while_the_server_is_saturated(fresh_test_server, tmp_path):
    """h2load keeps 32 connections × 32 streams of unary calls in flight on both cores while new
    clients connect one after another: time to SETTINGS and to a first answered health check stay
    bounded (p99 under 1 s and 2 s). The load runs until the probes are done."""
    port = fresh_test_server.port
    request = tmp_path / "request.bin"
    request.write_bytes(support.grpc_frame(support.protos().bench.Req(org_id="org-0001", page_size=10).SerializeToString()))
    load = subprocess.Popen(
        ["h2load", "-c", "32", "-m", "32", "-D", "120", "-d", str(request), "-H", "content-type: application/grpc", "-H", "te: trailers",
         f"http://127.0.0.1:{port}/bench.v1.Bench/Unary"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        time.sleep(2)  # the load is up
        settings, health = probe(port)
        assert load.poll() is None, "the load ended before the probes did: " + load.communicate()[0].decode(errors="replace")[-1500:]
    finally:
        load.terminate()
        load.wait(timeout=10)
    print(f"under load: SETTINGS p50 {sorted(settings)[len(settings) // 2] * 1000:.1f} ms, p99 {p99(settings) * 1000:.1f} ms; "
          f"first health check p99 {p99(health) * 1000:.1f} ms")
    assert p99(settings) < SETTINGS_P99_LIMIT, f"SETTINGS p99 {p99(settings):.2f} s: {sorted(settings)[-5:]}"
    assert p99(health) < HEALTH_P99_LIMIT, f"health p99 {p99(health):.2f} s: {sorted(health)[-5:]}"
    support.assert_server_healthy(fresh_test_server, "after the load")


def test_a_log_nobody_reads_does_not_stop_the_server(test_server_bin, tmp_path):
    """A server whose standard error is a pipe that is never read: thousands of calls (each logging
    an access line, far more than the pipe holds) still complete, new connections still get
    SETTINGS and health answers at once, and SIGTERM still ends it. Logging waits for no reader."""
    port = support.free_port()
    server = subprocess.Popen([test_server_bin, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        channel = support.make_channel(port)
        assert support.wait_until(lambda: _serving(channel), timeout=20), "the server did not start"
        echo = support.protos().echo_grpc.EchoStub(channel)
        request = support.protos().echo.EchoRequest(message="logged " * 20)
        failures = []

        def caller():
            for _ in range(500):
                try:
                    echo.Get(request, timeout=5)
                except grpc.RpcError as error:
                    failures.append(error.code())
                    return

        threads = [threading.Thread(target=caller) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures, f"calls failed once the log pipe filled: {failures[:5]}"
        assert max(time_to_settings(port) for _ in range(10)) < SETTINGS_P99_LIMIT
        assert time_to_health(port) < HEALTH_P99_LIMIT
        channel.close()
        # Shutdown does not wait for the reader either.
        server.terminate()
        assert server.wait(timeout=support.SHUTDOWN_TIMEOUT + 5) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)


def _serving(channel) -> bool:
    try:
        return support.health_check(channel, timeout=1).status == 1
    except grpc.RpcError:
        return False
