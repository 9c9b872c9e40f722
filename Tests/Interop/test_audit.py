"""grpcio against a real `portal audit` process: portal.audit.v1.AuditService end to end.

Idempotent appends, validation and batch atomicity, keyset paging (also while events arrive),
filters, full-text search, tenant isolation, the per-organization sequence and hash chain,
RecentEvents, the CSV export (content, quoting, formula neutralisation, time zones, filters, chunking)
and VerifyChain. One server serves the module; every test appends to organizations of its own, so the
tests do not depend on each other. Delivery through the outbox relay (audit outage, kill -9 of the
relaying service) is covered by test_audit_delivery.py.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import support
from support import CALL_TIMEOUT as T

P = support.protos()
A = P.audit  # portal.audit.v1 messages
MEMBERS, LICENSES, ACTIVATIONS = A.EVENT_TYPE_MEMBERS, A.EVENT_TYPE_LICENSES, A.EVENT_TYPE_ACTIVATIONS
UNSPECIFIED = A.EVENT_TYPE_UNSPECIFIED
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
TYPE_TITLE = {MEMBERS: "Members", LICENSES: "Licenses", ACTIVATIONS: "Activations"}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
HEADER = ["Date & Time", "Message", "Type", "User"]
HEADER_BYTES = b"Date & Time,Message,Type,User\r\n"
ZERO_HASH = bytes(32)
SLOW = 60  # timeout for the big appends and exports

# 05 Mar 2026, 14:07:09 UTC, in milliseconds.
BASE_MS = int(datetime(2026, 3, 5, 14, 7, 9, tzinfo=timezone.utc).timestamp()) * 1000

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:10]}"


def new_org() -> str:
    return unique("org_")


def ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def ms_of(timestamp) -> int:
    return timestamp.seconds * 1000 + timestamp.nanos // 1_000_000


def utc_ms(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


# --------------------------------------------------------------------------------------------
# The server and small helpers


@dataclass
class Audit:
    server: support.ServerProcess
    channel: grpc.Channel
    stub: object


@pytest.fixture(scope="module")
def audit(portal_bin, tmp_path_factory):
    """One `portal audit` server for the module, on a fresh data folder."""
    root = tmp_path_factory.mktemp("audit")
    server = support.ServerProcess([portal_bin, "audit", "--data-dir", str(root / "audit")], "audit", root / "logs")
    server.start()
    channel = support.make_channel(server.port)
    try:
        yield Audit(server, channel, P.audit_grpc.AuditServiceStub(channel))
    finally:
        channel.close()
        try:
            server.stop()
        finally:
            server.kill()


@pytest.fixture
def stub(audit):
    """The AuditService stub; after the test, the server must still be running."""
    yield audit.stub
    audit.server.assert_running("after the test")


def new_event(
    org: str,
    time_ms: int,
    event_type=MEMBERS,
    message: str = "Invited jane@example.com as Viewer",
    user: str = "Ada Lovelace",
    actor: str = "mem_ada",
    event_id: str | None = None,
    action=A.EVENT_ACTION_MEMBER_INVITED,
    subject_kind=A.SUBJECT_KIND_INVITE,
    subject_id: str = "inv_1",
):
    return A.NewEvent(
        event_id=event_id or str(uuid.uuid4()),
        organization_id=org,
        time=ts(time_ms),
        event_type=event_type,
        action=action,
        message=message,
        user=user,
        actor_member_id=actor,
        subject_kind=subject_kind,
        subject_id=subject_id,
    )


def append(stub, events, timeout: float = T):
    try:
        return stub.AppendEvents(A.AppendEventsRequest(events=list(events)), timeout=timeout)
    except grpc.RpcError as error:
        pytest.fail(f"AppendEvents of {len(events)} events failed: {error.code().name}: {error.details()!r}", pytrace=False)


def list_page(stub, org: str, **kwargs):
    return stub.ListEvents(A.ListEventsRequest(organization_id=org, **kwargs), timeout=T)


def list_all(stub, org: str, page_size: int = 500, limit: int = 1000, **kwargs) -> tuple[list, list]:
    """Pages through ListEvents; returns (every event, every response)."""
    events, responses, token = [], [], ""
    for _ in range(limit):
        response = list_page(stub, org, page_size=page_size, page_token=token, **kwargs)
        responses.append(response)
        events.extend(response.events)
        token = response.next_page_token
        if not token:
            return events, responses
    pytest.fail(f"paging did not end after {limit} pages")


def ids(events) -> list[str]:
    return [event.event_id for event in events]


def key(event) -> tuple[int, str]:
    """The list order: time, then event id."""
    return (ms_of(event.time), event.event_id)


def asc(events) -> list:
    return sorted(events, key=key)


def desc(events) -> list:
    return sorted(events, key=key, reverse=True)


def expect_invalid(method, request, field_name: str, timeout: float = T) -> grpc.RpcError:
    """Calls `method` and asserts INVALID_ARGUMENT whose details start with `field_name`."""
    return expect_invalid_any(method, request, (field_name,), timeout)


def expect_invalid_any(method, request, field_names, timeout: float = T) -> grpc.RpcError:
    try:
        response = method(request, timeout=timeout)
    except grpc.RpcError as error:
        assert error.code() == INVALID_ARGUMENT, (
            f"expected INVALID_ARGUMENT naming {field_names}, got {error.code().name}: {error.details()!r}"
        )
        details = error.details() or ""
        assert any(starts_with_field(details, name) for name in field_names), (
            f"INVALID_ARGUMENT as expected, but the details do not start with {' or '.join(field_names)}: {details!r}"
        )
        return error
    pytest.fail(f"expected INVALID_ARGUMENT naming {field_names}, the call succeeded: {response!r}"[:2000], pytrace=False)


def starts_with_field(details: str, name: str) -> bool:
    return details.startswith(name) and re.match(r"[A-Za-z0-9_]", details[len(name) : len(name) + 1]) is None


def export_chunks(stub, org: str, timeout: float = T, **kwargs) -> list[bytes]:
    request = A.ExportEventsCsvRequest(organization_id=org, **kwargs)
    try:
        return [response.chunk for response in stub.ExportEventsCsv(request, timeout=timeout)]
    except grpc.RpcError as error:
        pytest.fail(f"ExportEventsCsv failed: {error.code().name}: {error.details()!r}", pytrace=False)


def export_text(stub, org: str, timeout: float = T, **kwargs) -> str:
    return b"".join(export_chunks(stub, org, timeout=timeout, **kwargs)).decode("utf-8")


def export_call(stub):
    """ExportEventsCsv as a unary-looking callable, for expect_invalid."""
    return lambda request, timeout: list(stub.ExportEventsCsv(request, timeout=timeout))


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), strict=True))


def portal_time(ms: int, zone: str | None = None) -> str:
    """`DD MMM YYYY, HH:MM:SS` in UTC or an IANA zone (seconds truncated, never rounded)."""
    moment = datetime.fromtimestamp(ms // 1000, timezone.utc)
    if zone:
        moment = moment.astimezone(ZoneInfo(zone))
    return f"{moment.day:02d} {MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M:%S}"


def neutralised(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def expected_row(event, zone: str | None = None) -> list[str]:
    return [portal_time(ms_of(event.time), zone), neutralised(event.message), TYPE_TITLE[event.event_type], neutralised(event.user)]


def expected_csv(events, zone: str | None = None) -> str:
    """The exact RFC 4180 text: CRLF line ends, minimal quoting."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    for event in events:
        writer.writerow(expected_row(event, zone))
    return out.getvalue()


# --------------------------------------------------------------------------------------------
# Appending: results and idempotency


def test_appended_events_come_back_with_every_field(stub):
    """Every field of an appended event is returned by ListEvents unchanged (times at millisecond precision)."""
    org = new_org()
    before = int(time.time() * 1000)
    sent = [
        new_event(org, BASE_MS + 123, MEMBERS, "Invited jane@example.com as Viewer", "Ada Lovelace", "mem_ada",
                  action=A.EVENT_ACTION_MEMBER_INVITED, subject_kind=A.SUBJECT_KIND_INVITE, subject_id="inv_42"),
        new_event(org, BASE_MS + 60_000, LICENSES, "Entitlement ENT-7 transferred", "system", "",
                  action=A.EVENT_ACTION_ENTITLEMENT_TRANSFERRED, subject_kind=A.SUBJECT_KIND_ENTITLEMENT, subject_id="ent_7"),
        new_event(org, BASE_MS + 120_999, ACTIVATIONS, "Activated 3 licenses", "grace@example.com", "mem_grace",
                  action=A.EVENT_ACTION_LICENSES_ACTIVATED, subject_kind=A.SUBJECT_KIND_ACTIVATION, subject_id="act_9"),
    ]
    response = append(stub, sent)
    after = int(time.time() * 1000)
    assert (response.stored_count, response.duplicate_count) == (3, 0)

    events, _ = list_all(stub, org, order_by="time asc")
    assert len(events) == 3
    for got, want in zip(events, sent):
        assert got.event_id == want.event_id
        assert got.organization_id == org
        assert ms_of(got.time) == ms_of(want.time)
        assert got.event_type == want.event_type
        assert got.action == want.action
        assert got.message == want.message
        assert got.user == want.user
        assert got.actor_member_id == want.actor_member_id
        assert got.subject_kind == want.subject_kind
        assert got.subject_id == want.subject_id
        assert before - 2000 <= ms_of(got.recorded_at) <= after + 2000, got.recorded_at


def test_resending_the_same_batch_stores_nothing_new(stub):
    """The same batch sent again: stored 0, duplicates N; totals (also per type and user) and events unchanged."""
    org = new_org()
    batch = [new_event(org, BASE_MS + i * 1000, [MEMBERS, LICENSES][i % 2], f"Change {i}", "system" if i % 3 == 0 else "Ada")
             for i in range(20)]
    first = append(stub, batch)
    assert (first.stored_count, first.duplicate_count) == (20, 0)
    stored, _ = list_all(stub, org)
    totals = lambda: (list_page(stub, org).total_size,
                      list_page(stub, org, event_types=[LICENSES]).total_size,
                      list_page(stub, org, user="system").total_size,
                      list_page(stub, org, event_types=[MEMBERS], user="Ada").total_size)
    before = totals()
    assert before == (20, 10, sum(1 for e in batch if e.user == "system"),
                      sum(1 for e in batch if e.event_type == MEMBERS and e.user == "Ada"))

    for _ in range(2):
        again = append(stub, batch)
        assert (again.stored_count, again.duplicate_count) == (0, 20)
    assert totals() == before
    stored_again, _ = list_all(stub, org)
    assert [(e.event_id, e.sequence, e.hash) for e in stored_again] == [(e.event_id, e.sequence, e.hash) for e in stored]


def test_a_mixed_batch_stores_only_the_new_events_and_the_first_version_wins(stub):
    """Known ids are skipped even with changed content; new ids in the same batch are stored and chained after."""
    org = new_org()
    old = [new_event(org, BASE_MS + i * 1000, message=f"Original {i}") for i in range(10)]
    append(stub, old)
    changed = [A.NewEvent(event_id=e.event_id, organization_id=org, time=ts(BASE_MS + 999_000), event_type=LICENSES,
                          message="Changed", user="Mallory", actor_member_id="mem_mallory") for e in old[:5]]
    new = [new_event(org, BASE_MS + 50_000 + i * 1000, message=f"New {i}") for i in range(5)]
    mixed = [changed[0], new[0], changed[1], new[1], new[2], changed[2], changed[3], new[3], changed[4], new[4], old[9]]
    response = append(stub, mixed)
    assert (response.stored_count, response.duplicate_count) == (5, 6)

    events, responses = list_all(stub, org, order_by="time asc")
    assert responses[0].total_size == 15
    assert ids(events) == ids(old) + ids(new)
    assert [e.message for e in events] == [f"Original {i}" for i in range(10)] + [f"New {i}" for i in range(5)]
    assert all(e.user == "Ada Lovelace" and e.event_type == MEMBERS for e in events)
    assert list_page(stub, org, user="Mallory").total_size == 0
    assert list_page(stub, org, event_types=[LICENSES]).total_size == 0
    assert [e.sequence for e in events] == list(range(1, 16))


def test_an_id_repeated_within_one_batch_is_stored_once(stub):
    """[a, b, a', c, b'] stores a, b, c (first occurrence wins) and counts two duplicates."""
    org = new_org()
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    batch = [
        new_event(org, BASE_MS + 1000, message="a first", event_id=a),
        new_event(org, BASE_MS + 2000, message="b first", event_id=b),
        new_event(org, BASE_MS + 3000, message="a again", event_id=a),
        new_event(org, BASE_MS + 4000, message="c", event_id=c),
        new_event(org, BASE_MS + 5000, message="b again", event_id=b),
    ]
    response = append(stub, batch)
    assert (response.stored_count, response.duplicate_count) == (3, 2)
    events, responses = list_all(stub, org, order_by="time asc")
    assert responses[0].total_size == 3
    assert [(e.event_id, e.message) for e in events] == [(a, "a first"), (b, "b first"), (c, "c")]
    assert sorted(e.sequence for e in events) == [1, 2, 3]


def test_concurrent_appends_to_one_organization_keep_one_gapless_chain(stub):
    """8 clients append 10 batches each (and resend some) at once: every event stored once, sequences 1..800, chain ok."""
    org = new_org()
    batches = [[new_event(org, BASE_MS + random.randrange(0, 10_000_000), message=f"client {c} batch {b} #{i}")
                for i in range(10)] for c in range(8) for b in range(10)]

    def send(batch):
        first = stub.AppendEvents(A.AppendEventsRequest(events=batch), timeout=SLOW)
        second = stub.AppendEvents(A.AppendEventsRequest(events=batch[:3]), timeout=SLOW)
        return first, second

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, batches))
    assert sum(first.stored_count for first, _ in results) == 800
    assert sum(first.duplicate_count for first, _ in results) == 0
    assert all((second.stored_count, second.duplicate_count) == (0, 3) for _, second in results)

    events, responses = list_all(stub, org)
    assert responses[0].total_size == 800
    assert len(set(ids(events))) == 800
    assert sorted(e.sequence for e in events) == list(range(1, 801))
    by_sequence = sorted(events, key=lambda e: e.sequence)
    assert by_sequence[0].previous_hash == ZERO_HASH
    assert all(later.previous_hash == earlier.hash for earlier, later in zip(by_sequence, by_sequence[1:]))
    # Each batch was stored in one transaction: its events have consecutive sequence numbers, in order.
    sequence_of = {e.event_id: e.sequence for e in events}
    for batch in batches:
        numbers = [sequence_of[e.event_id] for e in batch]
        assert numbers == list(range(numbers[0], numbers[0] + 10)), numbers
    chain = stub.VerifyChain(A.VerifyChainRequest(organization_id=org), timeout=T)
    assert chain.ok and chain.events_checked == 800, chain


# --------------------------------------------------------------------------------------------
# Appending: validation and batch atomicity


def _mutations():
    """(id, field named, how event 1 of the batch is broken)."""

    def with_time(timestamp):
        def mutate(event):
            event.time.CopyFrom(timestamp)
        return mutate

    def clear(field):
        return lambda event: event.ClearField(field)

    def set_(field, value):
        return lambda event: setattr(event, field, value)

    return [
        ("event_id-missing", "event_id", set_("event_id", "")),
        ("event_id-129-bytes", "event_id", set_("event_id", "e" * 129)),
        ("event_id-130-utf8-bytes-65-chars", "event_id", set_("event_id", "é" * 65)),
        ("organization_id-missing", "organization_id", set_("organization_id", "")),
        ("event_type-unspecified", "event_type", set_("event_type", UNSPECIFIED)),
        ("event_type-unknown-value", "event_type", set_("event_type", 99)),
        ("time-missing", "time", clear("time")),
        ("time-before-1970", "time", with_time(Timestamp(seconds=-86_400))),
        ("time-nanos-too-large", "time", with_time(Timestamp(seconds=1_700_000_000, nanos=1_000_000_000))),
        ("time-nanos-negative", "time", with_time(Timestamp(seconds=1_700_000_000, nanos=-1))),
        ("time-after-year-9999", "time", with_time(Timestamp(seconds=253_402_300_800))),
        ("message-missing", "message", set_("message", "")),
        ("message-2001-chars", "message", set_("message", "m" * 2001)),
        ("user-missing", "user", set_("user", "")),
    ]


@pytest.mark.parametrize("field_name,mutate", [pytest.param(f, m, id=i) for i, f, m in _mutations()])
def test_a_bad_event_refuses_the_whole_batch(stub, field_name, mutate):
    """One bad event (index 1 of 3) → INVALID_ARGUMENT `events[1].<field>`; the valid events 0 and 2 are not stored."""
    org = new_org()
    batch = [new_event(org, BASE_MS + i * 1000, message=f"event {i}") for i in range(3)]
    mutate(batch[1])
    expect_invalid(stub.AppendEvents, A.AppendEventsRequest(events=batch), f"events[1].{field_name}")
    assert list_page(stub, org).total_size == 0
    assert list(list_page(stub, org).events) == []
    assert list(stub.RecentEvents(A.RecentEventsRequest(organization_id=org, limit=10), timeout=T).events) == []
    # Nothing stored means nothing deduplicated either: the valid events can be appended afterwards.
    valid = [batch[0], batch[2]]
    response = append(stub, valid)
    assert (response.stored_count, response.duplicate_count) == (2, 0)


def test_the_limits_themselves_are_accepted(stub):
    """event_id of 128 bytes, a message of 2000 characters (also 2000 two-byte ones), one-character user."""
    org = new_org()
    batch = [
        new_event(org, BASE_MS, event_id="i" * 128),
        new_event(org, BASE_MS + 1, message="m" * 2000),
        new_event(org, BASE_MS + 2, message="é" * 2000),
        new_event(org, BASE_MS + 3, user="x"),
    ]
    response = append(stub, batch)
    assert (response.stored_count, response.duplicate_count) == (4, 0)
    events, _ = list_all(stub, org, order_by="time asc")
    assert [e.event_id for e in events][0] == "i" * 128
    assert [e.message for e in events][1:3] == ["m" * 2000, "é" * 2000]


def test_batch_size_limits(stub):
    """An empty batch and 1001 events → INVALID_ARGUMENT naming events (nothing stored); 1000 events are stored."""
    org = new_org()
    expect_invalid(stub.AppendEvents, A.AppendEventsRequest(events=[]), "events")
    too_many = [new_event(org, BASE_MS + i, message=f"bulk {i}") for i in range(1001)]
    expect_invalid(stub.AppendEvents, A.AppendEventsRequest(events=too_many), "events", timeout=SLOW)
    assert list_page(stub, org).total_size == 0
    response = append(stub, too_many[:1000], timeout=SLOW)
    assert (response.stored_count, response.duplicate_count) == (1000, 0)
    assert list_page(stub, org).total_size == 1000


def test_a_refused_batch_leaves_the_chain_untouched(stub):
    """Good batch, refused batch, good batch: sequences 1, 2, 3 with no gap and VerifyChain ok."""
    org = new_org()
    append(stub, [new_event(org, BASE_MS, message="one")])
    bad = [new_event(org, BASE_MS + 1, message="refused"), new_event(org, BASE_MS + 2, event_type=UNSPECIFIED)]
    expect_invalid(stub.AppendEvents, A.AppendEventsRequest(events=bad), "events[1].event_type")
    append(stub, [new_event(org, BASE_MS + 3, message="two"), new_event(org, BASE_MS + 4, message="three")])
    events, _ = list_all(stub, org, order_by="time asc")
    assert [(e.message, e.sequence) for e in events] == [("one", 1), ("two", 2), ("three", 3)]
    assert events[1].previous_hash == events[0].hash and events[2].previous_hash == events[1].hash
    chain = stub.VerifyChain(A.VerifyChainRequest(organization_id=org), timeout=T)
    assert chain.ok and chain.events_checked == 3, chain


# --------------------------------------------------------------------------------------------
# Paging


def seed_with_ties(stub, org: str, count: int, per_second: int = 4) -> list:
    """`count` events, `per_second` sharing each time, appended in shuffled order in several batches."""
    events = [new_event(org, BASE_MS + (i // per_second) * 1000, message=f"Event {i}") for i in range(count)]
    shuffled = list(events)
    random.Random(count).shuffle(shuffled)
    for start in range(0, count, 37):
        append(stub, shuffled[start : start + 37])
    return events


def assert_pages(responses, page_size: int, total: int) -> None:
    for response in responses[:-1]:
        assert len(response.events) == page_size
        assert response.next_page_token
    assert 1 <= len(responses[-1].events) <= page_size
    assert responses[-1].next_page_token == ""
    assert all(response.total_size == total for response in responses), [r.total_size for r in responses]


def test_paging_through_120_events_in_both_orders_returns_each_once_in_order(stub):
    """page_size 7: 18 pages, every event once, time order with ties by event_id; desc is exactly asc reversed."""
    org = new_org()
    sent = seed_with_ties(stub, org, 120)
    expected_asc = ids(asc(sent))

    got_asc, responses = list_all(stub, org, page_size=7, order_by="time asc")
    assert len(responses) == 18
    assert_pages(responses, 7, 120)
    assert ids(got_asc) == expected_asc

    got_desc, responses = list_all(stub, org, page_size=7, order_by="time desc")
    assert len(responses) == 18
    assert_pages(responses, 7, 120)
    assert ids(got_desc) == expected_asc[::-1]

    # The default order is "time desc"; the default page size is 50.
    default = list_page(stub, org)
    assert ids(default.events) == expected_asc[::-1][:50]
    assert default.next_page_token and default.total_size == 120
    # A desc token continues the default order too.
    second = list_page(stub, org, page_token=default.next_page_token)
    assert ids(second.events) == expected_asc[::-1][50:100]


def test_page_size_limits(stub):
    """page_size 0 → 50, 500 is allowed, 501 and -1 → INVALID_ARGUMENT naming page_size."""
    org = new_org()
    seed_with_ties(stub, org, 60)
    assert len(list_page(stub, org, page_size=0).events) == 50
    assert len(list_page(stub, org, page_size=500).events) == 60
    expect_invalid(stub.ListEvents, A.ListEventsRequest(organization_id=org, page_size=501), "page_size")
    expect_invalid(stub.ListEvents, A.ListEventsRequest(organization_id=org, page_size=-1), "page_size")


def test_bad_list_arguments_are_refused_naming_the_field(stub):
    """Malformed tokens, a token of another order, unknown order_by, empty or inverted time ranges, unspecified types."""
    org = new_org()
    seed_with_ties(stub, org, 20)
    asc_token = list_page(stub, org, page_size=5, order_by="time asc").next_page_token
    desc_token = list_page(stub, org, page_size=5, order_by="time desc").next_page_token
    assert asc_token and desc_token
    req = lambda **kw: A.ListEventsRequest(organization_id=org, page_size=5, **kw)

    expect_invalid(stub.ListEvents, req(page_token=asc_token, order_by="time desc"), "page_token")
    expect_invalid(stub.ListEvents, req(page_token=asc_token), "page_token")  # default order is desc
    expect_invalid(stub.ListEvents, req(page_token=desc_token, order_by="time asc"), "page_token")
    for token in ["not a token!", "eyJmb28iOiJiYXIifQ", "AAAA", asc_token[:-3] + "%%%"]:
        expect_invalid(stub.ListEvents, req(page_token=token, order_by="time asc"), "page_token")
    for order_by in ["time sideways", "message asc", "recorded_at desc", "time desc extra", "sequence"]:
        expect_invalid(stub.ListEvents, req(order_by=order_by), "order_by")
    empty = stub.ListEvents(req(time_start=ts(BASE_MS), time_end=ts(BASE_MS)), timeout=10)  # equal bounds select nothing
    assert (list(empty.events), empty.total_size) == ([], 0)
    expect_invalid_any(stub.ListEvents, req(time_start=ts(BASE_MS), time_end=ts(BASE_MS - 1)), ("time_end", "time_start"))
    expect_invalid(stub.ListEvents, req(time_start=Timestamp(seconds=BASE_MS // 1000, nanos=-5)), "time_start")
    expect_invalid(stub.ListEvents, req(event_types=[UNSPECIFIED]), "event_types")
    expect_invalid(stub.ListEvents, req(event_types=[MEMBERS, UNSPECIFIED]), "event_types")
    expect_invalid(stub.ListEvents, A.ListEventsRequest(organization_id=""), "organization_id")

    # The valid tokens still work with their own order.
    assert len(list_page(stub, org, page_size=5, order_by="time asc", page_token=asc_token).events) == 5
    assert len(list_page(stub, org, page_size=5, order_by="time desc", page_token=desc_token).events) == 5


def test_newer_events_appended_between_pages_do_not_shift_the_remaining_pages(stub):
    """desc: the remaining pages are exactly as before (newer rows are behind the cursor); asc: the same pages, then the newer rows."""
    for order_by in ["time desc", "time asc"]:
        org = new_org()
        sent = seed_with_ties(stub, org, 40, per_second=3)
        _, planned = list_all(stub, org, page_size=7, order_by=order_by)
        planned_pages = [ids(r.events) for r in planned]
        assert len(planned_pages) == 6

        first = list_page(stub, org, page_size=7, order_by=order_by)
        assert ids(first.events) == planned_pages[0]
        newest = max(ms_of(e.time) for e in sent)
        newer = [new_event(org, newest + 1000 + i * 500, message=f"Newer {i}") for i in range(9)]
        append(stub, newer)

        assert len(list_all(stub, org, order_by=order_by)[0]) == 49
        token, pages = first.next_page_token, []
        while token:
            page = list_page(stub, org, page_size=7, order_by=order_by, page_token=token)
            assert page.total_size == 49
            pages.append(ids(page.events))
            token = page.next_page_token
        if order_by == "time desc":
            assert pages == planned_pages[1:], "a newer event shifted a desc traversal"
        else:
            assert pages[:4] == planned_pages[1:5], "a newer event shifted an asc traversal"
            assert sum(pages, []) == sum(planned_pages[1:], []) + ids(asc(newer)), "asc traversal must end with the newer events"


def test_a_token_stays_correct_for_events_appended_anywhere(stub):
    """Events appended at the start, middle and end while paging: each traversal returns exactly the events beyond its cursor."""
    for order_by, after_cursor in [("time desc", lambda k, c: k < c), ("time asc", lambda k, c: k > c)]:
        org = new_org()
        sent = seed_with_ties(stub, org, 30, per_second=2)
        served = []
        page = list_page(stub, org, page_size=7, order_by=order_by)
        served += page.events
        page = list_page(stub, org, page_size=7, order_by=order_by, page_token=page.next_page_token)
        served += page.events
        cursor = key(served[-1])
        times = sorted(ms_of(e.time) for e in sent)
        extra = [
            new_event(org, times[-1] + 5000, message="newest"),
            new_event(org, times[0] - 5000, message="oldest"),
            new_event(org, cursor[0], event_id="0" * 8 + str(uuid.uuid4())[8:], message="tie, smallest id"),
            new_event(org, cursor[0], event_id="f" * 8 + str(uuid.uuid4())[8:], message="tie, largest id"),
            new_event(org, times[len(times) // 2] + 1, message="middle"),
            new_event(org, times[3] + 1, message="early"),
            new_event(org, times[-4] + 1, message="late"),
        ]
        append(stub, extra)
        everything = sent + extra
        expected_rest = [e for e in (desc(everything) if order_by == "time desc" else asc(everything)) if after_cursor(key(e), cursor)]
        rest = []
        token = page.next_page_token
        while token:
            page = list_page(stub, org, page_size=7, order_by=order_by, page_token=token)
            rest += page.events
            token = page.next_page_token
        assert ids(rest) == ids(expected_rest), order_by
        assert len(set(ids(served + rest))) == len(served) + len(rest), "an event was served twice"
        assert set(ids(sent)) <= set(ids(served + rest)), "an original event was skipped"


# --------------------------------------------------------------------------------------------
# Filters


USERS = ["Ada Lovelace", "system", "grace@example.com", "Linus"]
ACTORS = {"Ada Lovelace": "mem_ada", "system": "", "grace@example.com": "mem_grace", "Linus": "mem_linus"}
TYPES = [MEMBERS, LICENSES, ACTIVATIONS]


def seed_filter_org(stub, org: str, count: int = 60) -> list:
    """Events one minute apart with types, users and actors cycling at different rates."""
    events = []
    for i in range(count):
        user = USERS[(i // 2) % 4]
        events.append(new_event(org, BASE_MS + i * 60_000, TYPES[i % 3], f"Change number {i}", user, ACTORS[user]))
    append(stub, events)
    return events


def check_filter(stub, org, sent, predicate, page_size=500, **filters):
    expected = [e for e in desc(sent) if predicate(e)]
    got, responses = list_all(stub, org, page_size=page_size, **filters)
    assert ids(got) == ids(expected), filters
    assert all(r.total_size == len(expected) for r in responses), (filters, [r.total_size for r in responses], len(expected))
    got_asc, _ = list_all(stub, org, page_size=page_size, order_by="time asc", **filters)
    assert ids(got_asc) == ids(expected)[::-1], filters
    return expected


def test_filter_by_event_types(stub):
    """One type, several types, every type, and a type repeated in the filter: exact events and total_size."""
    org = new_org()
    sent = seed_filter_org(stub, org)
    assert len(check_filter(stub, org, sent, lambda e: e.event_type == LICENSES, event_types=[LICENSES])) == 20
    check_filter(stub, org, sent, lambda e: e.event_type in (MEMBERS, ACTIVATIONS), event_types=[MEMBERS, ACTIVATIONS])
    check_filter(stub, org, sent, lambda e: True, event_types=[MEMBERS, LICENSES, ACTIVATIONS])
    check_filter(stub, org, sent, lambda e: e.event_type == MEMBERS, event_types=[MEMBERS, MEMBERS])
    check_filter(stub, org, sent, lambda e: e.event_type == ACTIVATIONS, page_size=4, event_types=[ACTIVATIONS])
    # A type with no events.
    other = new_org()
    append(stub, [new_event(other, BASE_MS, MEMBERS)])
    response = list_page(stub, other, event_types=[LICENSES, ACTIVATIONS])
    assert list(response.events) == [] and response.total_size == 0 and response.next_page_token == ""


def test_filter_by_user_and_actor(stub):
    """user matches the user text exactly; actor_member_id the member id; unknown ones match nothing."""
    org = new_org()
    sent = seed_filter_org(stub, org)
    assert len(check_filter(stub, org, sent, lambda e: e.user == "system", user="system")) == 16
    check_filter(stub, org, sent, lambda e: e.user == "grace@example.com", page_size=4, user="grace@example.com")
    check_filter(stub, org, sent, lambda e: False, user="Ada")  # exact, not a prefix
    check_filter(stub, org, sent, lambda e: e.actor_member_id == "mem_ada", actor_member_id="mem_ada")
    check_filter(stub, org, sent, lambda e: e.actor_member_id == "mem_linus", page_size=4, actor_member_id="mem_linus")
    check_filter(stub, org, sent, lambda e: False, actor_member_id="mem_nobody")
    check_filter(stub, org, sent, lambda e: False, actor_member_id="mem_")


def test_time_window_start_is_inclusive_and_end_exclusive(stub):
    """[t10, t20) holds events 10..19; one millisecond either way moves the boundary events; open-ended windows work."""
    org = new_org()
    sent = seed_filter_org(stub, org)
    t = lambda i: BASE_MS + i * 60_000
    in_window = lambda lo, hi: (lambda e: lo <= ms_of(e.time) < hi)
    assert len(check_filter(stub, org, sent, in_window(t(10), t(20)), time_start=ts(t(10)), time_end=ts(t(20)))) == 10
    assert len(check_filter(stub, org, sent, in_window(t(10) + 1, t(20) + 1),
                            time_start=ts(t(10) + 1), time_end=ts(t(20) + 1))) == 10
    only_one = check_filter(stub, org, sent, in_window(t(7), t(7) + 1), time_start=ts(t(7)), time_end=ts(t(7) + 1))
    assert [e.message for e in only_one] == ["Change number 7"]
    check_filter(stub, org, sent, in_window(t(7) + 1, t(8)), time_start=ts(t(7) + 1), time_end=ts(t(8)))  # nothing
    check_filter(stub, org, sent, lambda e: ms_of(e.time) >= t(55), time_start=ts(t(55)))
    check_filter(stub, org, sent, lambda e: ms_of(e.time) < t(5), time_end=ts(t(5)))
    check_filter(stub, org, sent, in_window(t(3), t(40)), page_size=6, time_start=ts(t(3)), time_end=ts(t(40)))
    check_filter(stub, org, sent, lambda e: False, time_start=ts(t(100)))


def test_filters_combine(stub):
    """Types, user, actor, time window and search together narrow by all of them (and total_size agrees)."""
    org = new_org()
    sent = seed_filter_org(stub, org)
    t = lambda i: BASE_MS + i * 60_000
    check_filter(stub, org, sent, lambda e: e.event_type in (MEMBERS, LICENSES) and e.user == "Ada Lovelace",
                 event_types=[MEMBERS, LICENSES], user="Ada Lovelace")
    check_filter(stub, org, sent, lambda e: e.event_type == LICENSES and e.user == "system",
                 event_types=[LICENSES], user="system")
    check_filter(stub, org, sent,
                 lambda e: e.event_type in (LICENSES, ACTIVATIONS) and e.actor_member_id == "mem_grace" and t(5) <= ms_of(e.time) < t(50),
                 page_size=2, event_types=[LICENSES, ACTIVATIONS], actor_member_id="mem_grace",
                 time_start=ts(t(5)), time_end=ts(t(50)))
    check_filter(stub, org, sent, lambda e: e.user == "Linus" and e.actor_member_id == "mem_linus" and ms_of(e.time) >= t(20),
                 user="Linus", actor_member_id="mem_linus", time_start=ts(t(20)))
    check_filter(stub, org, sent, lambda e: e.message == "Change number 14", search_text="number 14", event_types=[ACTIVATIONS])
    check_filter(stub, org, sent, lambda e: False, search_text="number 14", event_types=[MEMBERS])
    check_filter(stub, org, sent, lambda e: e.user == "system" and e.event_type == MEMBERS, search_text="change",
                 user="system", event_types=[MEMBERS])
    check_filter(stub, org, sent, lambda e: False, user="system", actor_member_id="mem_ada")


# --------------------------------------------------------------------------------------------
# Full-text search


SEARCH_ROWS = [
    ("Activated 3 licenses for the Berlin office", ACTIVATIONS, "Jane Doe"),
    ("Invited jane.doe@example.com as Viewer", MEMBERS, "Ada Lovelace"),
    ("Entitlement ENT-42 transferred to the organization", LICENSES, "system"),
    ("Licenses of entitlement ENT-7 expired", LICENSES, "system"),
    ("Removed member Bob", MEMBERS, "Ada Lovelace"),
    ("Changed role of Grace to Admin", MEMBERS, "Bob Builder"),
    ("Überweisung geprüft", ACTIVATIONS, "Mary O'Brien"),
    ("Activation failed, retried", ACTIVATIONS, "Jane Doe"),
    ("Resent invite to licensing@example.com", MEMBERS, "Grace Hopper"),
]


def seed_search_org(stub, org: str) -> list:
    events = [new_event(org, BASE_MS + i * 1000, t, m, u) for i, (m, t, u) in enumerate(SEARCH_ROWS)]
    append(stub, events)
    return events


def search(stub, org, text, **kwargs):
    events, responses = list_all(stub, org, search_text=text, **kwargs)
    assert all(r.total_size == len(events) for r in responses), (text, [r.total_size for r in responses], len(events))
    return sorted(e.message for e in events)


def messages_where(sent, predicate) -> list[str]:
    return sorted(e.message for e in sent if predicate(e))


def test_search_matches_every_word_whole_and_case_insensitively(stub):
    """"licenses activated" matches "Activated 3 licenses…"; LICENSES/licenses alike; whole words only; all words required."""
    org = new_org()
    seed_search_org(stub, org)
    assert search(stub, org, "licenses activated") == ["Activated 3 licenses for the Berlin office"]
    assert search(stub, org, "activated licenses") == ["Activated 3 licenses for the Berlin office"]
    both = sorted(["Activated 3 licenses for the Berlin office", "Licenses of entitlement ENT-7 expired"])
    for text in ["licenses", "LICENSES", "Licenses", "  licenses  "]:
        assert search(stub, org, text) == both, text
    assert search(stub, org, "lic") == []  # part of a word is not a word
    assert search(stub, org, "icenses") == []
    assert search(stub, org, "berlin OFFICE activated") == ["Activated 3 licenses for the Berlin office"]
    assert search(stub, org, "berlin bob") == []  # every word must match the same event
    assert search(stub, org, "3") == ["Activated 3 licenses for the Berlin office"]
    assert search(stub, org, "überweisung") == ["Überweisung geprüft"]
    assert search(stub, org, "ÜBERWEISUNG GEPRÜFT") == ["Überweisung geprüft"]


def test_search_covers_the_user_name(stub):
    """Words of the user match too: "bob" finds Bob Builder's event and the message naming Bob; "jane doe" both of Jane's."""
    org = new_org()
    sent = seed_search_org(stub, org)
    assert search(stub, org, "bob") == ["Changed role of Grace to Admin", "Removed member Bob"]
    assert search(stub, org, "jane doe") == messages_where(sent, lambda e: e.user == "Jane Doe" or "jane.doe@" in e.message)
    assert search(stub, org, "grace hopper") == ["Resent invite to licensing@example.com"]
    assert search(stub, org, "grace") == ["Changed role of Grace to Admin", "Resent invite to licensing@example.com"]
    assert search(stub, org, "o'brien") == ["Überweisung geprüft"]
    assert search(stub, org, "mary") == ["Überweisung geprüft"]
    assert search(stub, org, "system entitlement") == sorted(["Entitlement ENT-42 transferred to the organization",
                                                              "Licenses of entitlement ENT-7 expired"])
    assert search(stub, org, "jane.doe@example.com") == ["Invited jane.doe@example.com as Viewer"]


def test_search_without_matches_is_empty_with_total_zero(stub):
    """No match: no events, total_size 0, no next page token — also combined with filters and paging."""
    org = new_org()
    seed_search_org(stub, org)
    for text, extra in [("zebra", {}), ("licenses zebra", {}), ("bob", {"event_types": [LICENSES]}), ("bob", {"user": "system"})]:
        response = list_page(stub, org, search_text=text, page_size=3, **extra)
        assert list(response.events) == [] and response.total_size == 0 and response.next_page_token == "", text


def test_search_pages_like_any_list(stub):
    """A search result traversed 1 per page in both orders: each match once, in time order, total on every page."""
    org = new_org()
    sent = seed_search_org(stub, org)
    expected = [e for e in asc(sent) if any(w.lower() == "licenses" for w in re.split(r"[^\w]+", e.message + " " + e.user))]
    assert len(expected) == 2
    got, responses = list_all(stub, org, page_size=1, order_by="time asc", search_text="licenses")
    assert ids(got) == ids(expected) and len(responses) == 2
    assert all(r.total_size == 2 for r in responses)
    got, _ = list_all(stub, org, page_size=1, search_text="licenses")
    assert ids(got) == ids(expected)[::-1]


@pytest.mark.parametrize("text,same_as", [
    ('"licenses', "licenses"),
    ('licenses"', "licenses"),
    ('"licenses activated"', "licenses activated"),
    ("licenses*", "licenses"),
    ("*licenses", "licenses"),
    ("licenses* activated*", "licenses activated"),
    ('licenses" "activated', "licenses activated"),
    ("(licenses)", "licenses"),
    ("licenses:", "licenses"),
    ("^licenses", "licenses"),
    ("+activated", "activated"),
    ("licenses%", "licenses"),
    ("licenses\\", "licenses"),
    ("{licenses}", "licenses"),
    ("licenses NEAR(activated)", "licenses near activated"),
    ("licenses - activated", "licenses activated"),
    ("licenses * activated", "licenses activated"),
    ('licenses " activated', "licenses activated"),
])
def test_search_special_characters_cause_no_error(stub, text, same_as):
    """Quotes, stars and other query-syntax characters are not operators: no error, same matches as the plain words."""
    org = new_org()
    seed_search_org(stub, org)
    try:
        got = search(stub, org, text)
    except grpc.RpcError as error:
        pytest.fail(f"search_text {text!r} failed: {error.code().name}: {error.details()!r}", pytrace=False)
    assert got == search(stub, org, same_as), f"search_text {text!r} should match like {same_as!r}"


@pytest.mark.parametrize("text", ['"', "*", '"*"', "'", "-", "(", ")", "^", ":", "\\", "AND", "OR", "NOT", "NEAR", '""', "%_"])
def test_search_text_of_only_syntax_characters_causes_no_error(stub, text):
    """A search of nothing but query syntax answers OK with a consistent total_size (whatever it matches)."""
    org = new_org()
    sent = seed_search_org(stub, org)
    try:
        events, responses = list_all(stub, org, page_size=4, search_text=text)
    except grpc.RpcError as error:
        pytest.fail(f"search_text {text!r} failed: {error.code().name}: {error.details()!r}", pytrace=False)
    assert all(r.total_size == len(events) for r in responses)
    assert set(ids(events)) <= set(ids(sent))


# --------------------------------------------------------------------------------------------
# Tenant isolation


def test_nothing_of_another_organization_is_ever_returned(stub):
    """Two organizations with identical events in shared batches: lists, filters, search, tokens, recent, export, chain stay apart."""
    org_a, org_b = new_org(), new_org()
    sent = {org_a: [], org_b: []}
    batch = []
    for i in range(30):
        for org in (org_a, org_b):
            event = new_event(org, BASE_MS + i * 1000, TYPES[i % 3], f"Activated {i} licenses", USERS[i % 4], ACTORS[USERS[i % 4]])
            sent[org].append(event)
            batch.append(event)
    append(stub, batch)
    only_in_b = new_event(org_b, BASE_MS + 99_000, message="only in B")
    append(stub, [only_in_b])
    sent[org_b].append(only_in_b)

    for org, own_count in [(org_a, 30), (org_b, 31)]:
        events, responses = list_all(stub, org, page_size=7)
        assert {e.organization_id for e in events} == {org}
        assert len(events) == own_count and responses[0].total_size == own_count
        for filters in [{"event_types": [LICENSES]}, {"user": "system"}, {"actor_member_id": "mem_ada"},
                        {"search_text": "activated lic"}, {"time_start": ts(BASE_MS), "time_end": ts(BASE_MS + 200_000)}]:
            events, responses = list_all(stub, org, **filters)
            assert {e.organization_id for e in events} <= {org}, filters
            assert responses[0].total_size == len(events), filters
            assert set(ids(events)) <= set(ids(sent[org])), filters
        recent = stub.RecentEvents(A.RecentEventsRequest(organization_id=org, limit=100), timeout=T).events
        assert len(recent) == own_count and {e.organization_id for e in recent} == {org}
        rows = parse_csv(export_text(stub, org))
        assert len(rows) == 1 + own_count
        chain = stub.VerifyChain(A.VerifyChainRequest(organization_id=org), timeout=T)
        assert chain.ok and chain.events_checked == own_count, chain
        events, _ = list_all(stub, org)
        assert sorted(e.sequence for e in events) == list(range(1, own_count + 1))

    assert list_page(stub, org_a, search_text="only").total_size == 0
    # A page token of organization A is refused for organization B (tokens are bound to their organization).
    token = list_page(stub, org_a, page_size=5).next_page_token
    expect_invalid(stub.ListEvents, A.ListEventsRequest(organization_id=org_b, page_size=50, page_token=token), "page_token")
    # An organization with nothing: empty everywhere.
    empty = new_org()
    response = list_page(stub, empty)
    assert list(response.events) == [] and response.total_size == 0 and response.next_page_token == ""
    assert list(stub.RecentEvents(A.RecentEventsRequest(organization_id=empty), timeout=T).events) == []
    # Organization ids are compared exactly, not as prefixes or case-insensitively.
    assert list_page(stub, org_a[:-1]).total_size == 0
    assert list_page(stub, org_a.upper()).total_size == 0


# --------------------------------------------------------------------------------------------
# Sequence and hash chain


def test_sequence_and_hash_chain_fields(stub):
    """sequence 1, 2, 3… per organization in append order (not time order); first previous_hash is 32 zero bytes; each links to its predecessor."""
    org_a, org_b = new_org(), new_org()
    # Appended in an order unrelated to time, interleaving two organizations, over several batches.
    times = [BASE_MS + t * 1000 for t in [50, 10, 40, 20, 30, 5, 60, 15, 25, 35]]
    appended = {org_a: [], org_b: []}
    for start in range(0, 10, 3):
        batch = []
        for t in times[start : start + 3]:
            for org in (org_a, org_b) if start % 2 == 0 else (org_b, org_a):
                event = new_event(org, t, message=f"at {t}")
                appended[org].append(event.event_id)
                batch.append(event)
        append(stub, batch)
    # A duplicate does not advance the sequence.
    append(stub, [new_event(org_a, BASE_MS, event_id=appended[org_a][0])])

    for org in (org_a, org_b):
        events, _ = list_all(stub, org, order_by="time asc")
        sequence_of = {e.event_id: e.sequence for e in events}
        assert [sequence_of[i] for i in appended[org]] == list(range(1, 11))
        chain = sorted(events, key=lambda e: e.sequence)
        assert chain[0].previous_hash == ZERO_HASH
        assert all(len(e.hash) == 32 and len(e.previous_hash) == 32 for e in chain)
        assert all(later.previous_hash == earlier.hash for earlier, later in zip(chain, chain[1:]))
        assert len({e.hash for e in chain}) == 10 and ZERO_HASH not in {e.hash for e in chain}
        # The fields are stable: read again, the same.
        again, _ = list_all(stub, org, order_by="time asc")
        assert [(e.sequence, e.hash, e.previous_hash, e.recorded_at) for e in again] == [
            (e.sequence, e.hash, e.previous_hash, e.recorded_at) for e in events]
    # Same content in two organizations never gives the same hash.
    a_hashes = {e.hash for e in list_all(stub, org_a)[0]}
    b_hashes = {e.hash for e in list_all(stub, org_b)[0]}
    assert not a_hashes & b_hashes


def test_verify_chain_after_appends(stub):
    """VerifyChain: ok with events_checked = stored events (duplicates not counted); an unknown organization is ok with 0; org required."""
    org = new_org()
    total = 0
    for size in [1, 17, 250, 3]:
        batch = [new_event(org, BASE_MS + random.randrange(10**9), message=f"v {i}") for i in range(size)]
        append(stub, batch)
        append(stub, batch[:2])
        total += size
        chain = stub.VerifyChain(A.VerifyChainRequest(organization_id=org), timeout=T)
        assert chain.ok, chain
        assert chain.events_checked == total
        assert chain.first_broken_event_id == "" and chain.reason == ""
    unknown = stub.VerifyChain(A.VerifyChainRequest(organization_id=new_org()), timeout=T)
    assert unknown.ok and unknown.events_checked == 0, unknown
    expect_invalid(stub.VerifyChain, A.VerifyChainRequest(organization_id=""), "organization_id")


# --------------------------------------------------------------------------------------------
# RecentEvents


def test_recent_events_newest_first(stub):
    """limit 0 → 5, limit n → n newest (time desc, ties by event_id) equal to the list's first page; >100 or <0 refused."""
    org = new_org()
    sent = seed_with_ties(stub, org, 130, per_second=3)
    newest = ids(desc(sent))
    recent = lambda limit: ids(stub.RecentEvents(A.RecentEventsRequest(organization_id=org, limit=limit), timeout=T).events)
    assert recent(0) == newest[:5]
    assert recent(1) == newest[:1]
    assert recent(7) == newest[:7]
    assert recent(100) == newest[:100]
    assert recent(12) == ids(list_page(stub, org, page_size=12).events)
    # A newer event shows up first right away.
    latest = new_event(org, BASE_MS + 10**8, message="latest")
    append(stub, [latest])
    assert recent(2) == [latest.event_id, newest[0]]

    expect_invalid(stub.RecentEvents, A.RecentEventsRequest(organization_id=org, limit=101), "limit")
    expect_invalid(stub.RecentEvents, A.RecentEventsRequest(organization_id=org, limit=-1), "limit")
    expect_invalid(stub.RecentEvents, A.RecentEventsRequest(organization_id="", limit=5), "organization_id")
    small = new_org()
    append(stub, [new_event(small, BASE_MS + i * 1000, message=f"s{i}") for i in range(3)])
    few = stub.RecentEvents(A.RecentEventsRequest(organization_id=small, limit=100), timeout=T).events
    assert [e.message for e in few] == ["s2", "s1", "s0"]
    assert [e.sequence for e in few] == [3, 2, 1] and few[-1].previous_hash == ZERO_HASH


# --------------------------------------------------------------------------------------------
# CSV export


SPECIAL_MESSAGES = [
    "Hello, world",
    'He said "hi"',
    '"Quoted" at the start',
    "line one\nline two",
    "=SUM(A1:A9)",
    "=HYPERLINK(\"http://evil.example\",\"click\")",
    "-5 seats removed",
    "+1 seat added",
    "@admin mentioned",
    "\tTabbed",
    "\rCarriage return first",
    "carriage\rreturn inside",
    "Ünïcödé ✓ 日本語 — emoji 🎉",
    "Mixed, \"all\" of it\nand = - + @ inside",
    "'Already apostrophed",
    "trailing comma,",
    " leading space",
]
SPECIAL_USERS = ["=cmd|' /C calc'!A0", "-dash user", "O'Brien, Mary", "@handle", "+plus", "José \"Pepe\" Núñez"]


def seed_csv_org(stub, org: str) -> list:
    """~50 events: ordinary ones spread over years and times of day, plus awkward messages and users."""
    times = [
        utc_ms(2026, 3, 5, 14, 7, 9), utc_ms(2026, 3, 5, 20, 0, 0), utc_ms(2024, 2, 29, 0, 0, 0),
        utc_ms(1999, 12, 31, 23, 59, 59) + 999, utc_ms(2000, 1, 1, 0, 0, 0), utc_ms(2026, 1, 1, 9, 5, 3),
        utc_ms(2026, 3, 8, 7, 59, 59), utc_ms(2026, 3, 8, 8, 0, 0), utc_ms(2026, 11, 1, 6, 30, 0), utc_ms(2026, 11, 1, 7, 30, 0),
        utc_ms(2025, 7, 4, 12, 0, 0) + 500, utc_ms(2030, 10, 31, 23, 0, 1),
    ]
    events = []
    for i, t in enumerate(times):
        events.append(new_event(org, t, TYPES[i % 3], f"Milestone {i}", USERS[i % 4], ACTORS[USERS[i % 4]]))
    for i, message in enumerate(SPECIAL_MESSAGES):
        events.append(new_event(org, BASE_MS + (i + 1) * 3_600_000 + 17, TYPES[i % 3], message, "Ada Lovelace", "mem_ada"))
    for i, user in enumerate(SPECIAL_USERS):
        events.append(new_event(org, BASE_MS - (i + 1) * 86_400_000, LICENSES, f"Action by special user {i}", user, f"mem_special{i}"))
    for i in range(15):
        user = USERS[i % 4]
        events.append(new_event(org, BASE_MS + 10**6 * i + 123, TYPES[(i + 1) % 3], f"Routine change {i}", user, ACTORS[user]))
    # A time shared by two events (ordered by event id).
    events.append(new_event(org, times[0], MEMBERS, "Same second as milestone 0", "system", "", event_id="zzzz-" + str(uuid.uuid4())))
    shuffled = list(events)
    random.Random(7).shuffle(shuffled)
    append(stub, shuffled)
    return events


def assert_csv_equal(text: str, events, zone: str | None = None) -> None:
    assert text.startswith("Date & Time,Message,Type,User\r\n"), text[:80]
    assert text.endswith("\r\n")
    rows = parse_csv(text)
    assert rows[0] == HEADER
    expected = [expected_row(e, zone) for e in events]
    assert len(rows) - 1 == len(expected)
    for index, (got, want) in enumerate(zip(rows[1:], expected)):
        assert got == want, f"row {index + 1}: got {got!r}, expected {want!r}"
    assert text == expected_csv(events, zone)


def test_export_full_content(stub):
    """~50 events exported (default order time desc, UTC): exactly the expected rows — quoting, CRLF, neutralised formulas, unicode."""
    org = new_org()
    sent = seed_csv_org(stub, org)
    assert 45 <= len(sent) <= 60
    text = export_text(stub, org)
    assert_csv_equal(text, desc(sent))
    # Spot checks of the format itself.
    assert '"05 Mar 2026, 14:07:09"' in text
    assert '"29 Feb 2024, 00:00:00"' in text
    assert '"31 Dec 1999, 23:59:59"' in text  # .999 truncated, not rounded into 2000
    assert "\"'=SUM(A1:A9)\"" not in text and "'=SUM(A1:A9)," in text
    assert "'-5 seats removed," in text and "'+1 seat added," in text and "'@admin mentioned," in text
    assert '"He said ""hi"""' in text
    assert '"line one\nline two"' in text
    # asc is the same rows reversed; "" and "UTC" are both UTC.
    assert_csv_equal(export_text(stub, org, order_by="time asc"), asc(sent))
    assert export_text(stub, org, time_zone="UTC") == text
    assert export_text(stub, org, order_by="time desc", time_zone="") == text


def test_export_in_a_time_zone(stub):
    """time_zone converts every time: Asia/Tokyo is UTC+9 (crossing midnight), America/Chicago follows its DST switches."""
    org = new_org()
    sent = seed_csv_org(stub, org)
    tokyo = export_text(stub, org, time_zone="Asia/Tokyo")
    assert_csv_equal(tokyo, desc(sent), "Asia/Tokyo")
    assert '"05 Mar 2026, 23:07:09"' in tokyo  # 14:07:09 UTC
    assert '"06 Mar 2026, 05:00:00"' in tokyo  # 20:00:00 UTC, the next day in Tokyo
    assert '"05 Mar 2026, 14:07:09"' not in tokyo
    chicago = export_text(stub, org, time_zone="America/Chicago")
    assert_csv_equal(chicago, desc(sent), "America/Chicago")
    assert '"08 Mar 2026, 01:59:59"' in chicago and '"08 Mar 2026, 03:00:00"' in chicago  # spring forward
    assert chicago.count('"01 Nov 2026, 01:30:00"') == 2  # fall back: 01:30 happens twice


@pytest.mark.parametrize("zone", [
    "Asia/Kolkata", "Asia/Kathmandu", "Europe/Kyiv", "America/Argentina/Buenos_Aires", "Australia/Lord_Howe",
    "Pacific/Chatham", "America/St_Johns", "Etc/GMT-14", "Europe/London", "America/Los_Angeles",
])
def test_export_accepts_canonical_iana_zones(stub, zone):
    """Canonical IANA zones (also half- and quarter-hour offsets and Etc/GMT-N) are accepted and converted correctly."""
    ZoneInfo(zone)  # the zone exists in the IANA database on this machine
    org = new_org()
    sent = [new_event(org, t, MEMBERS, f"at {t}") for t in
            [utc_ms(2026, 3, 5, 14, 7, 9), utc_ms(2026, 7, 1, 23, 59, 59), utc_ms(2025, 12, 31, 18, 30, 0), utc_ms(2026, 10, 4, 15, 45, 0)]]
    append(stub, sent)
    request = A.ExportEventsCsvRequest(organization_id=org, order_by="time asc", time_zone=zone)
    try:
        text = b"".join(r.chunk for r in stub.ExportEventsCsv(request, timeout=T)).decode("utf-8")
    except grpc.RpcError as error:
        pytest.fail(f"time_zone {zone!r} refused: {error.code().name}: {error.details()!r}", pytrace=False)
    assert_csv_equal(text, asc(sent), zone)


def test_export_refuses_bad_arguments(stub):
    """Unknown time zone → INVALID_ARGUMENT naming time_zone; bad order_by, range, type or organization named too."""
    org = new_org()
    append(stub, [new_event(org, BASE_MS)])
    call = export_call(stub)
    req = lambda **kw: A.ExportEventsCsvRequest(organization_id=org, **kw)
    for zone in ["Mars/Olympus_Mons", "Asia/Tokio", "+09:00", "../../etc/passwd", "Not a zone"]:
        expect_invalid(call, req(time_zone=zone), "time_zone")
    expect_invalid(call, req(order_by="message asc"), "order_by")
    assert b"".join(piece.chunk for piece in call(req(time_start=ts(BASE_MS), time_end=ts(BASE_MS)), timeout=T)).count(b"\r\n") == 1
    expect_invalid(call, req(event_types=[UNSPECIFIED]), "event_types")
    expect_invalid(call, A.ExportEventsCsvRequest(organization_id=""), "organization_id")


def test_export_applies_the_filters(stub):
    """Types, user, actor, time window, search and order: the CSV holds exactly the matching events, in order."""
    org = new_org()
    sent = seed_csv_org(stub, org)
    window = (utc_ms(2026, 1, 1), utc_ms(2026, 3, 8, 8, 0, 0))
    cases = [
        ({"event_types": [LICENSES]}, lambda e: e.event_type == LICENSES),
        ({"event_types": [MEMBERS, ACTIVATIONS]}, lambda e: e.event_type in (MEMBERS, ACTIVATIONS)),
        ({"user": "system"}, lambda e: e.user == "system"),
        ({"user": "=cmd|' /C calc'!A0"}, lambda e: e.user == "=cmd|' /C calc'!A0"),
        ({"actor_member_id": "mem_grace"}, lambda e: e.actor_member_id == "mem_grace"),
        ({"time_start": ts(window[0]), "time_end": ts(window[1])}, lambda e: window[0] <= ms_of(e.time) < window[1]),
        ({"search_text": "routine change"}, lambda e: e.message.startswith("Routine change")),
        ({"search_text": "seat"}, lambda e: re.search(r"\bseat\b", e.message) is not None),
        ({"search_text": "milestone", "event_types": [MEMBERS], "time_start": ts(utc_ms(2000, 1, 1))},
         lambda e: "milestone" in e.message.lower() and e.event_type == MEMBERS and ms_of(e.time) >= utc_ms(2000, 1, 1)),
        ({"search_text": "nothing-like-this"}, lambda e: False),
    ]
    for filters, predicate in cases:
        for order_by, order in [("", desc), ("time asc", asc)]:
            expected = order([e for e in sent if predicate(e)])
            assert_csv_equal(export_text(stub, org, order_by=order_by, **filters), expected)
            # The export and the list agree.
            listed, _ = list_all(stub, org, order_by=order_by, **filters)
            assert ids(listed) == ids(expected), filters


def test_export_of_an_organization_without_events_is_only_the_header(stub):
    """No events (or none matching): the whole export is `Date & Time,Message,Type,User` CRLF."""
    assert b"".join(export_chunks(stub, new_org())) == HEADER_BYTES
    assert b"".join(export_chunks(stub, new_org(), time_zone="Asia/Tokyo", order_by="time asc")) == HEADER_BYTES
    org = new_org()
    append(stub, [new_event(org, BASE_MS, MEMBERS)])
    assert b"".join(export_chunks(stub, org, event_types=[LICENSES])) == HEADER_BYTES
    assert b"".join(export_chunks(stub, org, time_start=ts(BASE_MS + 1))) == HEADER_BYTES


def test_export_of_3000_events_streams_in_several_chunks(stub):
    """3,000 events (3 appends of 1,000): more than 2 chunks of about 64 KiB, together exactly the 3,000 rows in order."""
    org = new_org()
    sent = []
    for batch_number in range(3):
        batch = [new_event(org, BASE_MS + (batch_number * 1000 + i) * 1000 + (i % 7), TYPES[i % 3],
                           f"Bulk event {batch_number}-{i}: activated licenses for workstation ws-{i:05d}, seat pool \"north\"",
                           USERS[i % 4], ACTORS[USERS[i % 4]]) for i in range(1000)]
        response = append(stub, batch, timeout=SLOW)
        assert (response.stored_count, response.duplicate_count) == (1000, 0)
        sent += batch
    assert list_page(stub, org).total_size == 3000

    for order_by, order in [("time asc", asc), ("time desc", desc)]:
        chunks = export_chunks(stub, org, timeout=SLOW, order_by=order_by)
        assert len(chunks) > 2, [len(c) for c in chunks]
        assert all(chunks), "an empty chunk was sent"
        assert chunks[0].startswith(HEADER_BYTES)
        for chunk in chunks[:-1]:
            assert 32 * 1024 <= len(chunk) <= 128 * 1024, [len(c) for c in chunks]
        text = b"".join(chunks).decode("utf-8")
        assert_csv_equal(text, order(sent))


def test_export_cells_with_windows_line_breaks_are_quoted(stub):
    """A message or user holding CRLF is one quoted cell, so the file still parses as the same rows."""
    org = new_org()
    sent = [
        new_event(org, BASE_MS, MEMBERS, "first line\r\nsecond line", "Ada Lovelace"),
        new_event(org, BASE_MS + 1000, MEMBERS, "ends with a break\r\n", "multi\r\nline user"),
        new_event(org, BASE_MS + 2000, MEMBERS, "\r\nstarts with a break", "Ada Lovelace"),
    ]
    append(stub, sent)
    text = export_text(stub, org, order_by="time asc")
    assert '"first line\r\nsecond line"' in text
    assert_csv_equal(text, asc(sent))


def test_export_cells_with_combining_marks_after_a_comma_or_quote_are_quoted(stub):
    """A comma or quote followed by a combining mark is still a comma or quote in the file: the cell is quoted, quotes doubled."""
    org = new_org()
    sent = [
        new_event(org, BASE_MS, MEMBERS, "Renamed team to A,\u0301B", "Ada Lovelace"),
        new_event(org, BASE_MS + 1000, MEMBERS, "Said \"\u0301hi\"\u0301 twice", "Ada Lovelace"),
        new_event(org, BASE_MS + 2000, MEMBERS, "line\n\u0301break", "Ada Lovelace"),
    ]
    append(stub, sent)
    assert_csv_equal(export_text(stub, org, order_by="time asc"), asc(sent))
