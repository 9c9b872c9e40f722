"""Event delivery benchmark against one audit service: webhook delivery latency from commit to
receipt (p50/p99), deliveries/s sustained to one and to four endpoints, and WatchEvents fan-out
(subscribers × events/s, every subscriber checked to get every event in order).

Usage: events_bench.py HOST:PORT SERVER_PID   (env RATE=50 SECONDS=10 BURST=5000 SUBSCRIBERS=10,50,100 FANOUT_RATE=200)
"""
import os
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc

sys.path.insert(0, os.environ["STUBS"])
from portal.audit.v1 import audit_pb2 as A  # noqa: E402
from portal.audit.v1 import audit_pb2_grpc as AG  # noqa: E402
from google.protobuf.timestamp_pb2 import Timestamp  # noqa: E402

ADDRESS, SERVER_PID = sys.argv[1], int(sys.argv[2])


def cpu_seconds():
    """(the audit service's, this client's) CPU seconds so far."""
    with open(f"/proc/{SERVER_PID}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    usage = os.times()
    return (int(fields[11]) + int(fields[12])) / ticks, usage.user + usage.system
RATE = int(os.environ.get("RATE", 50))
SECONDS = float(os.environ.get("SECONDS", 10))
BURST = int(os.environ.get("BURST", 5000))
SUBSCRIBERS = [int(n) for n in os.environ.get("SUBSCRIBERS", "10,50,100").split(",")]
FANOUT_RATE = int(os.environ.get("FANOUT_RATE", 200))
channel = grpc.insecure_channel(ADDRESS, options=[("grpc.max_send_message_length", 64 << 20)])
stub = AG.AuditServiceStub(channel)
# Subscribers on connections of their own (8 of them), so their flow control never holds back the appends.
watchers = [AG.AuditServiceStub(grpc.insecure_channel(ADDRESS, options=[("grpc.use_local_subchannel_pool", 1)]))
            for _ in range(8)]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Receiver:
    """A loopback HTTP endpoint recording when each event id first arrived."""

    def __init__(self):
        self.received = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.received.setdefault(self.headers["portal-event-id"], time.monotonic())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, ids, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(i in self.received for i in ids):
                    return True
            time.sleep(0.01)
        return False


def events(org, count, first=0):
    now = int(time.time())
    return [A.NewEvent(event_id=f"{org}-{first + i}", organization_id=org, time=Timestamp(seconds=now),
                       event_type=A.EVENT_TYPE_ACTIVATIONS, action=A.EVENT_ACTION_LICENSES_ACTIVATED,
                       message=f"Activated 1 license of Nexus Core for project P{first + i}", user="Ada Lovelace")
            for i in range(count)]


def new_org_with_webhook(receiver):
    org = f"org-events-{uuid.uuid4().hex[:8]}"
    stub.CreateWebhook(A.CreateWebhookRequest(organization_id=org, url=receiver.url), timeout=10)
    return org


print(f"# event delivery benchmark against {ADDRESS}")

# 1. Latency: one event at a time at RATE/s, from the append's answer (committed) to the receiver.
receiver = Receiver()
org = new_org_with_webhook(receiver)
committed = {}
interval, started = 1.0 / RATE, time.monotonic()
for i in range(int(RATE * SECONDS)):
    target = started + i * interval
    time.sleep(max(0.0, target - time.monotonic()))
    (event,) = events(org, 1, i)
    stub.AppendEvents(A.AppendEventsRequest(events=[event]), timeout=10)
    committed[event.event_id] = time.monotonic()
assert receiver.wait(committed), "deliveries missing"
latencies = [(receiver.received[i] - t) * 1000 for i, t in committed.items()]
print(f"webhook latency, commit to receipt ({len(latencies)} events at {RATE}/s): "
      f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms")

# 2. Sustained deliveries: BURST events appended at once (batches of 500) to one endpoint, then to four.
for endpoints in (1, 4):
    receivers = [Receiver() for _ in range(endpoints)]
    orgs = [new_org_with_webhook(r) for r in receivers]
    started = time.monotonic()
    for org in orgs:
        for first in range(0, BURST // endpoints, 500):
            stub.AppendEvents(A.AppendEventsRequest(events=events(org, min(500, BURST // endpoints - first), first)), timeout=60)
    appended = time.monotonic() - started
    for org, r in zip(orgs, receivers):
        assert r.wait([f"{org}-{i}" for i in range(BURST // endpoints)]), "deliveries missing"
    elapsed = max(max(r.received.values()) for r in receivers) - started
    print(f"deliveries sustained, {endpoints} endpoint(s): {BURST} events in {elapsed:.1f} s = {BURST / elapsed:,.0f}/s "
          f"(appending took {appended:.1f} s)")

# 3. WatchEvents fan-out: N subscribers of one organization while events are appended at FANOUT_RATE/s.
for count in SUBSCRIBERS:
    org = f"org-fanout-{uuid.uuid4().hex[:8]}"
    total = int(FANOUT_RATE * 5)
    received = [[] for _ in range(count)]
    lags = []
    lag_lock = threading.Lock()
    ready = threading.Barrier(count + 1)
    sent_at = {}

    def follow(index):
        stream = watchers[index % len(watchers)].WatchEvents(A.WatchEventsRequest(organization_id=org, cursor="", heartbeat_seconds=1), timeout=120)
        first = True
        for message in stream:
            if first:
                first = False
                ready.wait()
            if message.heartbeat:
                continue
            received[index].append(message.event.sequence)
            with lag_lock:
                lags.append((time.monotonic() - sent_at.get(message.event.event_id, time.monotonic())) * 1000)
            if len(received[index]) == total:
                stream.cancel()
                return

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    ready.wait()  # every subscriber has its first heartbeat
    started = time.monotonic()
    server_cpu, client_cpu = cpu_seconds()
    for i in range(0, total, FANOUT_RATE // 10):
        target = started + i / FANOUT_RATE
        time.sleep(max(0.0, target - time.monotonic()))
        batch = events(org, FANOUT_RATE // 10, i)
        now = time.monotonic()
        for event in batch:
            sent_at[event.event_id] = now
        stub.AppendEvents(A.AppendEventsRequest(events=batch), timeout=10)
    for thread in threads:
        thread.join(timeout=120)
    complete = sum(1 for r in received if r == list(range(1, total + 1)))
    elapsed = time.monotonic() - started
    server_cpu, client_cpu = [(b - a) / elapsed for a, b in zip((server_cpu, client_cpu), cpu_seconds())]
    print(f"fan-out: {count} subscribers × {FANOUT_RATE} events/s = {count * FANOUT_RATE:,} messages/s offered; "
          f"{complete}/{count} got all {total} in order; {count * total / elapsed:,.0f} messages/s delivered; "
          f"lag p50 {statistics.median(lags):.0f} ms, p99 {percentile(lags, 99):.0f} ms; "
          f"CPU: audit {server_cpu:.2f} cores, client {client_cpu:.2f}")
