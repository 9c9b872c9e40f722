"""Audit service benchmark: one organization with EVENTS events; append throughput (one batch at a
time, then INFLIGHT at once into an organization of its own, its chain verified — and with
SECOND_ADDRESS, from two instances of one database at once), list and search
latency percentiles, a CSV export of EXPORT_EVENTS events with the server's memory before/after, and
the organization's chain verified.

Usage: audit_bench.py HOST:PORT SERVER_PID   (env EVENTS=5000000 EXPORT_EVENTS=1000000 BATCH=1000 SAMPLES=200
                                                  INFLIGHT=4 INFLIGHT_EVENTS=200000)
"""
import os
import random
import statistics
import sys
import threading
import time
import uuid

import grpc

sys.path.insert(0, os.environ["STUBS"])
from portal.audit.v1 import audit_pb2 as A  # noqa: E402
from portal.audit.v1 import audit_pb2_grpc as AG  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

ADDRESS, PID = sys.argv[1], int(sys.argv[2])
EVENTS = int(os.environ.get("EVENTS", 5_000_000))
EXPORT_EVENTS = min(EVENTS, int(os.environ.get("EXPORT_EVENTS", 1_000_000)))
BATCH = int(os.environ.get("BATCH", 1000))
SAMPLES = int(os.environ.get("SAMPLES", 200))
ORG = "org-bench"
START = 1_700_000_000
USERS = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "system"]
TYPES = [A.EVENT_TYPE_MEMBERS, A.EVENT_TYPE_LICENSES, A.EVENT_TYPE_ACTIVATIONS]
WORDS = ["Invited", "Activated", "licenses", "of", "Nexus", "Core", "Vision", "Edge", "Suite", "for", "project", "Apollo",
         "Gemini", "Mercury", "changed", "role", "Viewer", "Admin", "transferred", "entitlement"]

stub = AG.AuditServiceStub(grpc.insecure_channel(ADDRESS, options=[("grpc.max_send_message_length", 256 << 20),
                                                                    ("grpc.max_receive_message_length", 256 << 20)]))


def rss_kb(kind="VmRSS"):
    with open(f"/proc/{PID}/status") as status:
        for line in status:
            if line.startswith(kind + ":"):
                return int(line.split()[1])
    return 0


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def timed(call, samples=SAMPLES):
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return f"p50 {statistics.median(durations):7.2f} ms  p99 {percentile(durations, 99):7.2f} ms"


def make_batch(first):
    rng = random.Random(first)
    events = []
    for i in range(first, min(first + BATCH, EVENTS)):
        message = " ".join(rng.choice(WORDS) for _ in range(6)) + f" #{i}"
        events.append(A.NewEvent(event_id=uuid.UUID(int=i).hex, organization_id=ORG, time=Timestamp(seconds=START + i),
                                 event_type=TYPES[i % 3], action=1, message=message, user=USERS[i % len(USERS)]))
    return A.AppendEventsRequest(events=events)


existing = stub.ListEvents(A.ListEventsRequest(organization_id=ORG, page_size=1), timeout=60).total_size
print(f"# audit benchmark: {EVENTS:,} events in one organization (already stored: {existing:,}), batches of {BATCH}")
if existing < EVENTS:
    started, appended = time.perf_counter(), 0
    for first in range(existing, EVENTS, BATCH):
        stub.AppendEvents(make_batch(first), timeout=120)
        appended += min(BATCH, EVENTS - first)
        if first % 500_000 == 0 and first:
            print(f"  ... {first:,} events, {appended / (time.perf_counter() - started):,.0f} events/s so far", flush=True)
    elapsed = time.perf_counter() - started
    print(f"append: {appended:,} events in {elapsed:.1f} s = {appended / elapsed:,.0f} events/s (target > 20,000)")

# The same appends with INFLIGHT batches in flight at once (a busy relay, or several): on SQLite one
# batch's decoding and hashing overlap another's insert; on PostgreSQL a batch is also inserted while
# the one before it commits. Into an organization of its own, so the lists below measure the same data
# every run. With SECOND_ADDRESS (a second instance on the same database) the same once more, half
# the batches sent to each instance at once: the instances take turns on the organization's chain.
INFLIGHT = int(os.environ.get("INFLIGHT", 4))
INFLIGHT_EVENTS = int(os.environ.get("INFLIGHT_EVENTS", 200_000))


def append_in_flight(stubs, label):
    organization = f"org-inflight-{uuid.uuid4().hex[:8]}"
    requests = []
    for first in range(0, INFLIGHT_EVENTS, BATCH):
        batch = make_batch(first)
        for event in batch.events:
            event.organization_id = organization
            event.event_id = uuid.uuid4().hex
        requests.append(batch)

    def send(client, share):
        pending = []
        for request in share:
            pending.append(client.AppendEvents.future(request, timeout=120))
            if len(pending) >= INFLIGHT:
                pending.pop(0).result()
        for future in pending:
            future.result()

    started = time.perf_counter()
    senders = [threading.Thread(target=send, args=(client, requests[index::len(stubs)])) for index, client in enumerate(stubs)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    elapsed = time.perf_counter() - started
    chain = stub.VerifyChain(A.VerifyChainRequest(organization_id=organization), timeout=600)
    print(f"append, {label}: {INFLIGHT_EVENTS:,} events in {elapsed:.1f} s = {INFLIGHT_EVENTS / elapsed:,.0f} events/s "
          f"(target > 20,000); chain {'unbroken' if chain.ok else 'BROKEN: ' + chain.reason}, {chain.events_checked:,} events checked")
    assert chain.ok and chain.events_checked == INFLIGHT_EVENTS, chain


append_in_flight([stub], f"{INFLIGHT} batches in flight")
if os.environ.get("SECOND_ADDRESS"):
    second = AG.AuditServiceStub(grpc.insecure_channel(os.environ["SECOND_ADDRESS"], options=[("grpc.max_send_message_length", 256 << 20)]))
    append_in_flight([stub, second], f"two instances, {INFLIGHT} batches in flight at each")

page = lambda **kw: stub.ListEvents(A.ListEventsRequest(organization_id=ORG, page_size=50, **kw), timeout=30)
print("list first page (time desc):       ", timed(lambda: page()))
tokens = []
response = page()
for _ in range(20):
    tokens.append(response.next_page_token)
    response = page(page_token=response.next_page_token)
print("list next pages (keyset):          ", timed(lambda: page(page_token=random.choice(tokens))))
print("list by type (ACTIVATIONS):        ", timed(lambda: page(event_types=[A.EVENT_TYPE_ACTIVATIONS])))
print("list by user:                      ", timed(lambda: page(user="Grace Hopper")))
window = lambda: page(time_start=Timestamp(seconds=START + EVENTS // 2), time_end=Timestamp(seconds=START + EVENTS // 2 + 86_400))
print("list one day's window:             ", timed(window))
print("search one word (\"Apollo\"):        ", timed(lambda: page(search_text="Apollo")))
print("search two words, rare:            ", timed(lambda: page(search_text=f"#{random.randrange(EVENTS)} Nexus")))
print("recent 5 (dashboard):              ", timed(lambda: stub.RecentEvents(A.RecentEventsRequest(organization_id=ORG, limit=5), timeout=30)))

before = rss_kb()
started, size, rows = time.perf_counter(), 0, 0
request = A.ExportEventsCsvRequest(organization_id=ORG, order_by="time asc", time_start=Timestamp(seconds=START),
                                   time_end=Timestamp(seconds=START + EXPORT_EVENTS))
peak = before
for chunk in stub.ExportEventsCsv(request, timeout=600):
    size += len(chunk.chunk)
    rows += chunk.chunk.count(b"\r\n")
    peak = max(peak, rss_kb())
elapsed = time.perf_counter() - started
print(f"export: {rows - 1:,} rows, {size / 1e6:.1f} MB of CSV in {elapsed:.2f} s = {(rows - 1) / elapsed:,.0f} rows/s (target < 5 s for 1,000,000)")
print(f"server RSS during export: before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, after {rss_kb() / 1024:.1f} MiB")
chain = stub.VerifyChain(A.VerifyChainRequest(organization_id=ORG), timeout=600)
print(f"chain of {ORG}: {'unbroken' if chain.ok else 'BROKEN: ' + chain.reason}, {chain.events_checked:,} events checked")
assert chain.ok, chain
