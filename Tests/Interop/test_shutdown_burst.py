"""SIGTERM in the middle of a burst of calls: every call either completes whole (OK, every streamed
message) or fails with UNAVAILABLE; none hangs, none is cut off mid-response with another status, and
the server exits 0."""

from __future__ import annotations

import threading
import time

import grpc

import support

CALLS = 120
STREAM_MESSAGES = 20


def test_sigterm_during_a_burst_completes_or_refuses_every_call(test_server_bin, start_server, pb):
    server = start_server([test_server_bin])
    channels = [support.make_channel(server.port) for _ in range(4)]
    stubs = [pb.echo_grpc.EchoStub(channel) for channel in channels]
    outcomes: list[tuple[str, object]] = [("pending", None)] * CALLS
    started = threading.Barrier(CALLS + 1)

    def call(index: int) -> None:
        stub = stubs[index % len(stubs)]
        started.wait()
        time.sleep((index % 10) * 0.02)  # spread the calls over the signal
        replies = []
        try:
            if index % 2:
                for reply in stub.Expand(pb.echo.EchoRequest(message=f"s{index}", response_count=STREAM_MESSAGES, delay_ms=10), timeout=15):
                    replies.append(reply)
                complete = len(replies) == STREAM_MESSAGES and all(reply.message == f"s{index}" for reply in replies)
                outcomes[index] = ("ok" if complete else "truncated", len(replies))
            else:
                reply = stub.Get(pb.echo.EchoRequest(message=f"u{index}", delay_ms=100), timeout=15)
                outcomes[index] = ("ok" if reply.message == f"u{index}" else "wrong", reply.message)
        except grpc.RpcError as error:
            # Refused before it started is clean; a stream ended after some of its messages was cut.
            outcomes[index] = ("cut mid-response" if replies else error.code().name, f"{len(replies)} messages, {error.details()}")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(CALLS)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.1)
    server.terminate()
    for thread in threads:
        thread.join(timeout=20)
    assert not [thread for thread in threads if thread.is_alive()], "a call hung after SIGTERM"
    unexpected = [(i, outcome) for i, outcome in enumerate(outcomes) if outcome[0] not in ("ok", "UNAVAILABLE")]
    assert not unexpected, f"calls neither completed nor refused cleanly: {unexpected[:10]}"
    completed = sum(1 for outcome in outcomes if outcome[0] == "ok")
    print(f"{completed} completed, {CALLS - completed} refused with UNAVAILABLE")
    assert completed > 0, "some calls in flight at SIGTERM should complete"
    assert server.wait_exit() == 0
    for channel in channels:
        channel.close()
