"""A standard gRPC client (grpcio) against the portal servers: every RPC shape, metadata, deadlines,
cancellation, message limits, status details, field kinds, health, reflection and shutdown."""

from __future__ import annotations

import json
import queue
import threading
import time

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.timestamp_pb2 import Timestamp

import support
from support import CALL_TIMEOUT as T
from support import MIB

P = support.protos()
E = P.echo  # portal.testing.v1 messages

ECHO_METHODS = {
    "Get": (False, False),
    "Expand": (False, True),
    "Collect": (True, False),
    "Update": (True, True),
    "RoundTrip": (False, False),
    "Stats": (False, False),
}


def stats(stub) -> "E.StatsResponse":
    return stub.Stats(E.StatsRequest(), timeout=T)


def wait_for_stats(stub, predicate, timeout: float = 2.0):
    """Polls Echo/Stats until `predicate(stats)` holds; returns the last stats seen."""
    last = stats(stub)
    deadline = time.monotonic() + timeout
    while not predicate(last) and time.monotonic() < deadline:
        time.sleep(0.05)
        last = stats(stub)
    return last


def metadata_pairs(metadata) -> list[tuple[str, object]]:
    return [(item.key, item.value) for item in metadata or ()]


# --------------------------------------------------------------------------------------------
# RPC shapes


def test_unary_call_echoes_message_and_payload(echo):
    """Echo/Get returns the request's message and payload with status OK."""
    request = E.EchoRequest(message="hello, portal", payload=bytes(range(256)))
    response, call = echo.Get.with_call(request, timeout=T)
    assert call.code() == grpc.StatusCode.OK
    assert response.message == "hello, portal"
    assert response.payload == bytes(range(256))


def test_unary_call_sizes_payload_on_request(echo):
    """Echo/Get with response_size answers with that many bytes of b"a"."""
    response = echo.Get(E.EchoRequest(message="sized", response_size=1000, payload=b"ignored"), timeout=T)
    assert response.message == "sized"
    assert response.payload == b"a" * 1000


def test_server_streaming_delivers_100_responses_in_order(echo):
    """Echo/Expand streams response_count responses, indexed 0..n-1, then ends OK."""
    call = echo.Expand(E.EchoRequest(message="stream", response_count=100, response_size=32), timeout=T)
    responses = list(call)
    assert call.code() == grpc.StatusCode.OK
    assert len(responses) == 100
    assert [r.index for r in responses] == list(range(100))
    assert all(r.message == "stream" and r.payload == b"a" * 32 for r in responses)


def test_server_streaming_with_no_responses_ends_ok(echo):
    """Echo/Expand with response_count 0 ends with OK and no messages."""
    call = echo.Expand(E.EchoRequest(message="nothing", response_count=0), timeout=T)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_server_stream_failure_arrives_after_all_responses(echo):
    """Echo/Expand with fail_with_code sends every response, then fails with that status."""
    call = echo.Expand(E.EchoRequest(message="then fail", response_count=3, fail_with_code=9), timeout=T)
    received = []
    with pytest.raises(grpc.RpcError) as failure:
        for response in call:
            received.append(response.index)
    assert received == [0, 1, 2]
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.value.details() == "then fail"


def test_client_streaming_collects_every_request(echo):
    """Echo/Collect joins the messages, counts the requests and concatenates the payloads."""
    requests = [E.EchoRequest(message=f"part{i}", payload=bytes([i]) * 3) for i in range(10)]
    response, call = echo.Collect.with_call(iter(requests), timeout=T)
    assert call.code() == grpc.StatusCode.OK
    assert response.message == " ".join(f"part{i}" for i in range(10))
    assert response.index == 10
    assert response.payload == b"".join(bytes([i]) * 3 for i in range(10))


def test_client_streaming_with_no_requests(echo):
    """Echo/Collect with an immediately half-closed stream answers an empty collection."""
    response = echo.Collect(iter([]), timeout=T)
    assert response.message == ""
    assert response.index == 0
    assert response.payload == b""


def test_bidirectional_ping_pong_interleaves_before_half_close(echo):
    """Echo/Update answers each request as it arrives, before the client half-closes."""
    outbox: queue.Queue = queue.Queue()
    done = object()

    def requests():
        while True:
            item = outbox.get()
            if item is done:
                return
            yield item

    call = echo.Update(requests(), timeout=T)
    try:
        for i in range(20):
            outbox.put(E.EchoRequest(message=f"ping {i}"))
            response = next(call)  # blocks until the server answers this very request
            assert (response.message, response.index) == (f"ping {i}", i)
    except grpc.RpcError as error:
        pytest.fail(
            f"no response to a bidirectional request before half-close: {error.code()} {error.details()} "
            "(the server must answer each Update request as it arrives)"
        )
    finally:
        outbox.put(done)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_bench_unary_answers(channel):
    """bench.v1.Bench/Unary, served by the test server, answers a well-formed Resp."""
    bench = P.bench
    call = channel.unary_unary(
        "/bench.v1.Bench/Unary",
        request_serializer=bench.Req.SerializeToString,
        response_deserializer=bench.Resp.FromString,
    )
    response, info = call.with_call(bench.Req(org_id="org-1", page_size=5), timeout=T)
    assert info.code() == grpc.StatusCode.OK
    assert isinstance(response, bench.Resp)


def test_bench_stream_sends_the_items_in_turn(channel):
    """bench.v1.Bench/Stream sends page_size items, Unary's ten in turn; a negative count is refused."""
    bench = P.bench
    unary = channel.unary_unary(
        "/bench.v1.Bench/Unary", request_serializer=bench.Req.SerializeToString, response_deserializer=bench.Resp.FromString
    )
    stream = channel.unary_stream(
        "/bench.v1.Bench/Stream", request_serializer=bench.Req.SerializeToString, response_deserializer=bench.Item.FromString
    )
    ten = list(unary(bench.Req(), timeout=T).items)
    assert len(ten) == 10
    items = list(stream(bench.Req(page_size=25), timeout=T))
    assert items == [ten[index % 10] for index in range(25)]
    assert list(stream(bench.Req(page_size=0), timeout=T)) == []
    with pytest.raises(grpc.RpcError) as refused:
        list(stream(bench.Req(page_size=-1), timeout=T))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size" in refused.value.details()


# --------------------------------------------------------------------------------------------
# Metadata


ROUND_TRIP_METADATA = [
    ("x-request-id", "interop-metadata-1"),
    ("x-custom", "plain value"),
    ("x-echo-initial", "initial value"),
    ("x-echo-initial-bin", b"\x00\x01\xfe\xff"),
    ("x-echo-trailing", "trailing value"),
    ("x-echo-trailing-bin", b"\xff\x00\x80"),
    ("x-data-bin", bytes(range(5))),
]


def test_metadata_round_trip_including_binary(echo):
    """x- request metadata reaches the handler; x-echo-* come back as initial/trailing metadata."""
    response, call = echo.Get.with_call(E.EchoRequest(message="meta"), metadata=ROUND_TRIP_METADATA, timeout=T)
    seen = dict(response.seen_metadata)
    for key, value in ROUND_TRIP_METADATA:
        expected = support.std_b64(value) if key.endswith("-bin") else value
        assert seen.get(key) == expected, f"seen_metadata[{key!r}]: {seen.get(key)!r} != {expected!r} (all: {seen})"
    assert all(key.startswith("x-") for key in seen), seen

    initial = metadata_pairs(call.initial_metadata())
    assert ("x-echo-initial", "initial value") in initial, initial
    assert ("x-echo-initial-bin", b"\x00\x01\xfe\xff") in initial, initial
    assert ("x-request-id", "interop-metadata-1") in initial, initial

    trailing = metadata_pairs(call.trailing_metadata())
    assert ("x-echo-trailing", "trailing value") in trailing, trailing
    assert ("x-echo-trailing-bin", b"\xff\x00\x80") in trailing, trailing


def test_metadata_round_trip_on_streaming_call(echo):
    """Initial metadata arrives before the first streamed message and trailers after the last."""
    call = echo.Expand(E.EchoRequest(message="s", response_count=2), metadata=ROUND_TRIP_METADATA, timeout=T)
    initial = metadata_pairs(call.initial_metadata())
    assert ("x-echo-initial-bin", b"\x00\x01\xfe\xff") in initial, initial
    assert ("x-echo-initial", "initial value") in initial, initial
    responses = list(call)
    assert [r.index for r in responses] == [0, 1]
    trailing = metadata_pairs(call.trailing_metadata())
    assert ("x-echo-trailing", "trailing value") in trailing, trailing
    assert ("x-echo-trailing-bin", b"\xff\x00\x80") in trailing, trailing


def test_request_id_is_generated_when_client_sends_none(echo):
    """Without x-request-id the server generates one per call and sends it as a response header."""
    ids = []
    for _ in range(2):
        _, call = echo.Get.with_call(E.EchoRequest(message="id"), timeout=T)
        values = [value for key, value in metadata_pairs(call.initial_metadata()) if key == "x-request-id"]
        assert len(values) == 1 and values[0], call.initial_metadata()
        ids.append(values[0])
    assert ids[0] != ids[1]


def test_request_id_header_on_failed_call(echo):
    """x-request-id is sent even when the call fails (trailers-only responses included)."""
    with pytest.raises(grpc.RpcError) as failure:
        echo.Get(E.EchoRequest(message="no", fail_with_code=5), metadata=[("x-request-id", "failing-call-7")], timeout=T)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    everything = metadata_pairs(failure.value.initial_metadata()) + metadata_pairs(failure.value.trailing_metadata())
    assert ("x-request-id", "failing-call-7") in everything, everything


# --------------------------------------------------------------------------------------------
# Deadlines and cancellation


def test_deadline_expiry_is_deadline_exceeded_and_cancels_handler(fresh_channel):
    """A 300 ms deadline on a 5 s Get fails quickly with DEADLINE_EXCEEDED and stops the handler."""
    stub = P.echo_grpc.EchoStub(fresh_channel)
    before = stats(stub)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as failure:
        stub.Get(E.EchoRequest(message="slow", delay_ms=5000), timeout=0.3)
    elapsed = time.monotonic() - started
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 1.5, f"deadline of 0.3 s took {elapsed:.2f} s to fire"
    after = wait_for_stats(
        stub, lambda s: s.calls_cancelled > before.calls_cancelled and s.calls_active == 0, timeout=2.0
    )
    assert after.calls_cancelled > before.calls_cancelled, f"handler did not see the deadline: {before} -> {after}"
    assert after.calls_active == 0, f"handler still running 2 s after the deadline: {after}"


def test_cancelled_unary_call_cancels_handler(fresh_channel):
    """Cancelling a pending Get reaches the server handler, which stops."""
    stub = P.echo_grpc.EchoStub(fresh_channel)
    before = stats(stub)
    future = stub.Get.future(E.EchoRequest(message="cancel me", delay_ms=10000), timeout=30)
    running = wait_for_stats(stub, lambda s: s.calls_active == 1, timeout=2.0)
    assert running.calls_active == 1, f"the delayed Get never started on the server: {running}"
    time.sleep(0.2)
    assert future.cancel()
    assert future.cancelled()
    after = wait_for_stats(
        stub, lambda s: s.calls_cancelled > before.calls_cancelled and s.calls_active == 0, timeout=2.0
    )
    assert after.calls_cancelled == before.calls_cancelled + 1, f"{before} -> {after}"
    assert after.calls_active == 0, after


def test_cancelled_server_stream_cancels_handler(fresh_channel):
    """Cancelling an Expand stream mid-way reaches the handler, which stops sending."""
    stub = P.echo_grpc.EchoStub(fresh_channel)
    before = stats(stub)
    call = stub.Expand(E.EchoRequest(message="long", response_count=1000, delay_ms=20), timeout=30)
    first = [next(call).index for _ in range(5)]
    assert first == [0, 1, 2, 3, 4]
    assert call.cancel()
    assert call.code() == grpc.StatusCode.CANCELLED
    after = wait_for_stats(
        stub, lambda s: s.calls_cancelled > before.calls_cancelled and s.calls_active == 0, timeout=2.0
    )
    assert after.calls_cancelled == before.calls_cancelled + 1, f"{before} -> {after}"
    assert after.calls_active == 0, after


# --------------------------------------------------------------------------------------------
# Message sizes


def test_3_mib_request_and_response_succeed(echo):
    """A 3 MiB request payload is echoed back whole (below the 4 MiB server limit)."""
    payload = bytes(range(256)) * (3 * MIB // 256)
    response = echo.Get(E.EchoRequest(message="big", payload=payload), timeout=T)
    assert len(response.payload) == 3 * MIB
    assert response.payload == payload


def test_3_mib_generated_response_succeeds(echo):
    """A small request asking for a 3 MiB response gets it."""
    response = echo.Get(E.EchoRequest(message="big reply", response_size=3 * MIB), timeout=T)
    assert response.payload == b"a" * (3 * MIB)


def test_oversized_request_is_resource_exhausted(echo):
    """A 5 MiB request (server limit 4 MiB) fails with RESOURCE_EXHAUSTED; the server keeps serving."""
    with pytest.raises(grpc.RpcError) as failure:
        echo.Get(E.EchoRequest(message="too big", payload=b"x" * (5 * MIB)), timeout=T)
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (failure.value.code(), failure.value.details())
    assert failure.value.details(), "RESOURCE_EXHAUSTED without a status message"
    after = echo.Get(E.EchoRequest(message="after oversize"), timeout=T)
    assert after.message == "after oversize"


def test_oversized_client_stream_message_is_resource_exhausted(echo):
    """An oversized message in the middle of a client stream fails the call with RESOURCE_EXHAUSTED."""
    requests = [E.EchoRequest(message="ok"), E.EchoRequest(message="huge", payload=b"y" * (5 * MIB))]
    with pytest.raises(grpc.RpcError) as failure:
        echo.Collect(iter(requests), timeout=T)
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (failure.value.code(), failure.value.details())
    assert echo.Get(E.EchoRequest(message="still fine"), timeout=T).message == "still fine"


# --------------------------------------------------------------------------------------------
# Status codes, messages and details


def test_error_status_carries_message_and_details(echo):
    """fail_with_code=9 gives FAILED_PRECONDITION with the message and a google.rpc.Status detail."""
    request = E.EchoRequest(message="precondition failed", fail_with_code=9, payload=b"\x00ctx")
    with pytest.raises(grpc.RpcError) as failure:
        echo.Get(request, timeout=T)
    error = failure.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "precondition failed"
    details = [value for key, value in metadata_pairs(error.trailing_metadata()) if key == "grpc-status-details-bin"]
    assert len(details) == 1, f"no grpc-status-details-bin trailer: {error.trailing_metadata()}"
    status = P.status.Status.FromString(details[0])
    assert status.code == 9
    assert status.message == "precondition failed"
    assert len(status.details) == 1
    assert status.details[0].type_url == "type.googleapis.com/portal.testing.v1.EchoRequest"
    assert E.EchoRequest.FromString(status.details[0].value) == request


@pytest.mark.parametrize("message", ["café 100% ✓", "100%25 literal", "line\nbreak\ttab", "日本語 🚀 %00"])
def test_status_message_with_non_ascii_and_percent_arrives_intact(echo, message):
    """Status messages are percent-encoded on the wire and decode back exactly."""
    with pytest.raises(grpc.RpcError) as failure:
        echo.Get(E.EchoRequest(message=message, fail_with_code=9), timeout=T)
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.value.details() == message


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK], ids=lambda c: c.name)
def test_every_status_code_reaches_the_client(echo, code):
    """Each non-OK status code a handler throws reaches the client unchanged."""
    with pytest.raises(grpc.RpcError) as failure:
        echo.Get(E.EchoRequest(message=f"code {code.name}", fail_with_code=code.value[0]), timeout=T)
    assert failure.value.code() == code
    assert failure.value.details() == f"code {code.name}"


def test_unknown_method_is_unimplemented(channel):
    """A method the Echo service lacks fails with UNIMPLEMENTED."""
    call = channel.unary_unary("/portal.testing.v1.Echo/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as failure:
        call(b"", timeout=T)
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_service_is_unimplemented(channel):
    """A service the server does not host fails with UNIMPLEMENTED."""
    call = channel.unary_unary("/no.such.Service/Get")
    with pytest.raises(grpc.RpcError) as failure:
        call(b"", timeout=T)
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_unknown_streaming_method_is_unimplemented(channel):
    """A bidirectional call to an unknown method fails with UNIMPLEMENTED too."""
    call = channel.stream_stream("/portal.testing.v1.Echo/NoSuchStream")
    with pytest.raises(grpc.RpcError) as failure:
        list(call(iter([b"\x0a\x01x"]), timeout=T))
    assert failure.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --------------------------------------------------------------------------------------------
# Field kinds


def every_field_kind(choice: str) -> "E.AllKinds":
    message = E.AllKinds(
        int32_value=-(2**31),
        int64_value=2**63 - 1,
        uint32_value=2**32 - 1,
        uint64_value=2**64 - 1,
        sint32_value=-12345,
        sint64_value=-(2**62),
        fixed32_value=0xDEADBEEF,
        fixed64_value=2**64 - 2,
        sfixed32_value=-7,
        sfixed64_value=-(2**63),
        float_value=-2.5,
        double_value=1e300,
        bool_value=True,
        string_value="héllo wörld ✓ end",
        bytes_value=bytes(range(256)),
        colour=E.COLOUR_GREEN,
        nested=E.Nested(label="inner", weight=-3),
        time=Timestamp(seconds=1_700_000_000, nanos=123_456_789),
        maybe_int32=0,
        maybe_string="",
        maybe_bool=False,
        maybe_colour=E.COLOUR_UNSPECIFIED,
        maybe_bytes=b"",
        repeated_int32=[0, -1, 2**31 - 1, -(2**31)],
        repeated_string=["a", "", "ü"],
        repeated_bytes=[b"", b"\x00", b"\xff" * 3],
        repeated_nested=[E.Nested(label="one", weight=1), E.Nested()],
        repeated_colour=[E.COLOUR_RED, E.COLOUR_UNSPECIFIED, E.COLOUR_GREEN],
        repeated_double=[0.0, -0.5, 1e-300],
        labels={"k1": "v1", "": "empty key", "ключ": "значение"},
        nested_by_id={1: E.Nested(label="x", weight=10), -5: E.Nested(label="neg")},
    )
    if choice == "choice_text":
        message.choice_text = "chosen"
    elif choice == "choice_number":
        message.choice_number = -(2**40)
    else:
        message.choice_nested.CopyFrom(E.Nested(label="chosen nested", weight=99))
    return message


@pytest.mark.parametrize("choice", ["choice_text", "choice_number", "choice_nested"])
def test_round_trip_of_every_field_kind(echo, choice):
    """RoundTrip returns an AllKinds with every field set (oneofs, maps, presence) unchanged."""
    request = every_field_kind(choice)
    response = echo.RoundTrip(request, timeout=T)
    assert response == request
    assert response.WhichOneof("choice") == choice
    for name in ["maybe_int32", "maybe_string", "maybe_bool", "maybe_colour", "maybe_bytes"]:
        assert response.WhichOneof(f"optional_{name}") == name, f"presence of zero-valued {name} was lost"


def test_round_trip_of_empty_message_keeps_presence_fields_absent(echo):
    """An empty AllKinds comes back empty: no presence field or oneof is invented."""
    response = echo.RoundTrip(E.AllKinds(), timeout=T)
    assert response == E.AllKinds()
    assert response.ByteSize() == 0
    for name in ["maybe_int32", "maybe_string", "maybe_bool", "maybe_colour", "maybe_bytes"]:
        assert response.WhichOneof(f"optional_{name}") is None
    assert response.WhichOneof("choice") is None


def test_bytes_with_nul_round_trip_and_strings_with_nul_are_refused(echo):
    """Bytes may hold NULs; a string holding one is refused by name instead of being cut short.

    protobuf-c stores strings NUL-terminated, so the server refuses them rather than lose the tail.
    """
    request = E.AllKinds(string_value="plain", bytes_value=b"\x00\x00x\x00")
    assert echo.RoundTrip(request, timeout=T) == request
    with pytest.raises(grpc.RpcError) as refused:
        echo.RoundTrip(E.AllKinds(repeated_string=["ok", "a\x00b"]), timeout=T)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "repeated_string contains a NUL character" in refused.value.details()


def test_round_trip_preserves_unknown_fields(channel):
    """Fields the server does not know are passed through RoundTrip byte for byte."""
    known = E.AllKinds(int32_value=7, string_value="known").SerializeToString()
    unknown = (
        bytes([0xC0, 0x3E]) + bytes([0x96, 0x01])  # field 1000, varint 150
        + bytes([0xBA, 0x3E, 0x05]) + b"hello"  # field 999, length-delimited
        + bytes([0xB5, 0x3E]) + b"\x01\x02\x03\x04"  # field 998, fixed32
        + bytes([0xA9, 0x3E]) + b"\x01\x02\x03\x04\x05\x06\x07\x08"  # field 997, fixed64
    )
    call = channel.unary_unary("/portal.testing.v1.Echo/RoundTrip", request_serializer=None, response_deserializer=None)
    response = call(known + unknown, timeout=T)
    assert unknown in response, f"unknown fields lost: sent {unknown.hex()}, got {response.hex()}"
    parsed = E.AllKinds.FromString(response)
    assert (parsed.int32_value, parsed.string_value) == (7, "known")


# --------------------------------------------------------------------------------------------
# Health


def test_health_check_overall_and_echo_are_serving(channel):
    """Health/Check answers SERVING for the server ("") and for the Echo service."""
    serving = P.health.HealthCheckResponse.SERVING
    assert support.health_check(channel, "").status == serving
    assert support.health_check(channel, "portal.testing.v1.Echo").status == serving


def test_health_check_of_unknown_service_is_not_found(channel):
    """Health/Check of a service the server does not host fails with NOT_FOUND."""
    with pytest.raises(grpc.RpcError) as failure:
        support.health_check(channel, "no.such.Service")
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_watch_first_message_is_serving(channel):
    """Health/Watch("") starts with SERVING."""
    call = support.health_watch(channel, "", timeout=T)
    try:
        first = next(call)
        assert first.status == P.health.HealthCheckResponse.SERVING
    finally:
        call.cancel()


# --------------------------------------------------------------------------------------------
# Reflection

REFLECTION_VERSIONS = ["v1", "v1alpha"]
R = P.reflection


def file_descriptors(response) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    assert response.WhichOneof("message_response") == "file_descriptor_response", response
    files = {}
    for raw in response.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        files[proto.name] = proto
    return files


def defines(file: descriptor_pb2.FileDescriptorProto, symbol: str) -> bool:
    names = [m.name for m in file.message_type] + [s.name for s in file.service] + [e.name for e in file.enum_type]
    return any(f"{file.package}.{name}" == symbol for name in names)


def resolve_with_dependencies(channel, symbol: str, version: str) -> tuple[dict, str]:
    """Files for `symbol` plus every dependency (fetched by name when not sent along); and the
    name of the file that defines `symbol`."""
    (response,) = support.reflection_call(channel, [R.ServerReflectionRequest(file_containing_symbol=symbol)], version)
    files = file_descriptors(response)
    defining = [name for name, file in files.items() if defines(file, symbol)]
    assert len(defining) == 1, f"file_containing_symbol({symbol!r}) returned {list(files)}, none defining it"
    missing = [dep for f in files.values() for dep in f.dependency if dep not in files]
    while missing:
        name = missing.pop()
        (by_name,) = support.reflection_call(channel, [R.ServerReflectionRequest(file_by_filename=name)], version)
        fetched = file_descriptors(by_name)
        assert name in fetched, f"file_by_filename({name!r}) returned {list(fetched)}"
        files.update(fetched)
        missing = [dep for f in files.values() for dep in f.dependency if dep not in files]
    return files, defining[0]


@pytest.mark.parametrize("version", REFLECTION_VERSIONS)
def test_reflection_lists_services(channel, version):
    """Reflection lists Echo, Health and ServerReflection."""
    names = support.list_services(channel, version)
    for expected in [support.ECHO_SERVICE, support.HEALTH_SERVICE, support.REFLECTION_V1_SERVICE]:
        assert expected in names, f"{expected} missing from {names}"


@pytest.mark.parametrize("version", REFLECTION_VERSIONS)
def test_reflection_file_containing_symbol_describes_echo(channel, version):
    """file_containing_symbol(Echo) returns echo.proto with the service, its methods and dependencies."""
    files, main = resolve_with_dependencies(channel, "portal.testing.v1.Echo", version)
    echo_file = files[main]
    assert echo_file.package == "portal.testing.v1"
    services = {s.name: s for s in echo_file.service}
    assert "Echo" in services, f"{main} has services {list(services)}"
    methods = {m.name: (m.client_streaming, m.server_streaming) for m in services["Echo"].method}
    assert methods == ECHO_METHODS
    get = next(m for m in services["Echo"].method if m.name == "Get")
    assert (get.input_type, get.output_type) == (".portal.testing.v1.EchoRequest", ".portal.testing.v1.EchoResponse")
    assert "google/protobuf/timestamp.proto" in echo_file.dependency
    assert "google/protobuf/timestamp.proto" in files
    assert any(m.name == "Timestamp" for m in files["google/protobuf/timestamp.proto"].message_type)


@pytest.mark.parametrize("version", REFLECTION_VERSIONS)
def test_reflection_descriptor_matches_echo_proto(channel, version):
    """The served echo.proto declares the same messages, fields and enums as proto/portal/testing/v1."""
    files, main = resolve_with_dependencies(channel, "portal.testing.v1.AllKinds", version)
    served = files[main]
    expected = descriptor_pb2.FileDescriptorProto.FromString(E.DESCRIPTOR.serialized_pb)
    assert served.name == expected.name == "portal/testing/v1/echo.proto"

    def shape(file):
        messages = {}

        def walk(prefix, message_types):
            for m in message_types:
                messages[prefix + m.name] = sorted(
                    (f.name, f.number, f.type, f.label, f.type_name, f.HasField("oneof_index") and f.oneof_index)
                    for f in m.field
                )
                walk(prefix + m.name + ".", m.nested_type)

        walk("", file.message_type)
        enums = {e.name: sorted((v.name, v.number) for v in e.value) for e in file.enum_type}
        return messages, enums

    assert shape(served) == shape(expected)


@pytest.mark.parametrize("version", REFLECTION_VERSIONS)
def test_reflection_unknown_symbol_is_not_found(channel, version):
    """file_containing_symbol of an unknown symbol answers an error_response with NOT_FOUND."""
    (response,) = support.reflection_call(
        channel, [R.ServerReflectionRequest(file_containing_symbol="no.such.Symbol")], version
    )
    assert response.WhichOneof("message_response") == "error_response", response
    assert response.error_response.error_code == 5


@pytest.mark.parametrize("version", REFLECTION_VERSIONS)
def test_reflection_answers_several_requests_on_one_stream(channel, version):
    """One ServerReflectionInfo stream answers each request in order, echoing the original request."""
    requests = [
        R.ServerReflectionRequest(list_services=""),
        R.ServerReflectionRequest(file_by_filename="portal/testing/v1/echo.proto"),
        R.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
    ]
    responses = support.reflection_call(channel, requests, version)
    kinds = [r.WhichOneof("message_response") for r in responses]
    assert kinds == ["list_services_response", "file_descriptor_response", "error_response"]
    assert [r.original_request for r in responses] == requests


def test_grpcio_reflection_client_resolves_echo(channel):
    """grpcio-reflection's ProtoReflectionDescriptorDatabase (v1alpha) builds a working Echo descriptor."""
    reflection_db = pytest.importorskip("grpc_reflection.v1alpha.proto_reflection_descriptor_database")
    database = reflection_db.ProtoReflectionDescriptorDatabase(channel)
    services = database.get_services()
    assert support.ECHO_SERVICE in services, services
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName(support.ECHO_SERVICE)
    assert {m.name: (m.client_streaming, m.server_streaming) for m in service.methods} == ECHO_METHODS
    all_kinds = pool.FindMessageTypeByName("portal.testing.v1.AllKinds")
    assert all_kinds.fields_by_name["time"].message_type.full_name == "google.protobuf.Timestamp"
    # The reflected descriptor decodes what the compiled one encodes.
    dynamic = message_factory.GetMessageClass(all_kinds).FromString(every_field_kind("choice_nested").SerializeToString())
    assert dynamic.nested_by_id[1].weight == 10
    assert dynamic.choice_nested.label == "chosen nested"


# --------------------------------------------------------------------------------------------
# The portal executables

PORTAL_SERVICES = ["entitlements", "identity", "audit", "gateway"]


@pytest.mark.parametrize("service", PORTAL_SERVICES)
def test_portal_service_serves_health_and_reflection_and_stops_on_sigterm(portal_bin, start_server, tmp_path, service):
    """`portal <service>` answers health and reflection over grpcio and exits 0 on SIGTERM."""
    data_dir = tmp_path / f"{service}-data"
    data_dir.mkdir()
    server = start_server([portal_bin, service, "--data-dir", str(data_dir)], f"portal-{service}")
    channel = support.make_channel(server.port)
    try:
        assert support.health_check(channel, "").status == P.health.HealthCheckResponse.SERVING
        names = support.list_services(channel, "v1")
        assert support.HEALTH_SERVICE in names, names
        assert support.REFLECTION_V1_SERVICE in names, names
    finally:
        channel.close()
    server.stop()  # asserts exit code 0 within 10 s of SIGTERM


# --------------------------------------------------------------------------------------------
# Concurrency and shutdown


def test_200_concurrent_unary_calls_on_one_channel(echo):
    """200 concurrent Gets over one channel (one HTTP/2 connection) all succeed with their own data."""
    futures = [
        echo.Get.future(E.EchoRequest(message=f"call {i}", payload=i.to_bytes(2, "big") * 50), timeout=30)
        for i in range(200)
    ]
    failures = []
    for i, future in enumerate(futures):
        try:
            response = future.result()
        except grpc.RpcError as error:
            failures.append(f"call {i}: {error.code()} {error.details()}")
            continue
        assert response.message == f"call {i}"
        assert response.payload == i.to_bytes(2, "big") * 50
    assert not failures, f"{len(failures)} of 200 concurrent calls failed: {failures[:5]}"


def test_concurrent_streams_of_every_shape(echo):
    """Server, client and bidirectional streams run concurrently on one connection."""
    results: dict[str, list] = {"expand": [], "collect": [], "update": []}

    def expand():
        results["expand"].append([r.index for r in echo.Expand(E.EchoRequest(response_count=50, delay_ms=2), timeout=T)])

    def collect():
        results["collect"].append(echo.Collect(iter([E.EchoRequest(message=str(i)) for i in range(50)]), timeout=T).index)

    def update():
        results["update"].append([r.index for r in echo.Update(iter([E.EchoRequest(message="u")] * 50), timeout=T)])

    threads = [threading.Thread(target=f) for f in (expand, collect, update) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {"expand": [list(range(50))] * 4, "collect": [50] * 4, "update": [list(range(50))] * 4}


def test_graceful_shutdown_completes_in_flight_call_and_refuses_new_connections(test_server_bin, start_server):
    """After SIGTERM the in-flight Get still completes OK, new connections fail, and the exit code is 0."""
    server = start_server([test_server_bin], "shutdown-test-server")
    channel = support.make_channel(server.port)
    stub = P.echo_grpc.EchoStub(channel)
    assert stub.Get(E.EchoRequest(message="warm up"), timeout=T).message == "warm up"
    in_flight = stub.Get.future(E.EchoRequest(message="in flight", delay_ms=1000), timeout=T)
    time.sleep(0.2)
    server.terminate()
    signalled = time.monotonic()
    time.sleep(0.1)

    late_channel = support.make_channel(server.port)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            P.echo_grpc.EchoStub(late_channel).Get(E.EchoRequest(message="too late"), timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, (refused.value.code(), refused.value.details())
    finally:
        late_channel.close()

    try:
        response = in_flight.result()
    except grpc.RpcError as error:
        pytest.fail(f"in-flight call failed during graceful shutdown: {error.code()} {error.details()}\n{server.describe()}")
    assert response.message == "in flight"
    code = server.wait_exit(support.SHUTDOWN_TIMEOUT)
    channel.close()
    server.stopped = True
    assert code is not None, f"server still running {time.monotonic() - signalled:.1f}s after SIGTERM\n{server.describe()}"
    assert code == 0, f"exit code {code} after SIGTERM\n{server.describe()}"


def test_server_logs_json_lines_to_stderr(test_server_bin, start_server):
    """Everything the server writes to stderr, from start to SIGTERM, is one JSON object per line."""
    server = start_server([test_server_bin], "logging-test-server")
    channel = support.make_channel(server.port)
    try:
        P.echo_grpc.EchoStub(channel).Get(E.EchoRequest(message="log me"), metadata=[("x-request-id", "log-check-1")], timeout=T)
    finally:
        channel.close()
    server.stop()
    lines = [line for line in server.stderr_path.read_text(errors="replace").splitlines() if line.strip()]
    assert lines, "the server logged nothing"
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            pytest.fail(f"stderr line is not a JSON object: {line!r}")
    assert any("log-check-1" in line for line in lines), "the call with x-request-id log-check-1 was not logged"
