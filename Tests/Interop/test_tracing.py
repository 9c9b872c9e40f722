"""Distributed tracing against a real OTLP receiver: a grpcio `TraceService` built from the
opentelemetry-proto package, to which the four `portal` processes export (`--otlp-endpoint`).

One gateway `Activate` becomes one trace: the gateway's server span, its client spans to identity
(the session) and entitlements, their server spans, the entitlements transaction, and — later, from
the outbox — the delivery to audit, linked to that transaction, with audit's append under it. Trace
context from a caller is continued, log lines inside a call carry its trace and span ids, a zero
sampling ratio records nothing (and tells the next service so), and a collector that is gone changes
no result and slows no call.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent import futures

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

import support
from test_gateway import Stack, unique

T = 10
P = support.protos()
G = P.gateway
SERVER, CLIENT, PRODUCER = trace_pb2.Span.SPAN_KIND_SERVER, trace_pb2.Span.SPAN_KIND_CLIENT, trace_pb2.Span.SPAN_KIND_PRODUCER


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it, with the `service.name` of the process that sent it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans: list[tuple[str, trace_pb2.Span]] = []
        self.requests = 0

    def Export(self, request, context):
        with self.lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append((resource["service.name"], span))
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: bytes) -> list[tuple[str, trace_pb2.Span]]:
        with self.lock:
            return [(service, span) for service, span in self.spans if span.trace_id == trace_id]

    def all(self) -> list[tuple[str, trace_pb2.Span]]:
        with self.lock:
            return list(self.spans)


@pytest.fixture(scope="module")
def collector():
    receiver = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    receiver.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver
    server.stop(grace=None)


class TracedStack(Stack):
    """The four services, each exporting its spans to `endpoint` (and serving metrics on an admin port)."""

    def __init__(self, portal_bin: str, root, endpoint: str, *tracing: str):
        super().__init__(portal_bin, root)
        self.tracing = ["--otlp-endpoint", endpoint, *tracing]
        self.admin_ports: dict[str, int] = {}

    def launch(self, service: str, data_dir: str, *args: str) -> support.ServerProcess:
        port = self.admin_ports[data_dir] = support.free_port()
        return super().launch(service, data_dir, *args, *self.tracing, "--admin-port", str(port))


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory, collector):
    started = TracedStack(portal_bin, tmp_path_factory.mktemp("traced"), f"127.0.0.1:{collector.port}")
    try:
        yield started.start()
    finally:
        started.stop()


def attributes(span: trace_pb2.Span) -> dict:
    """A span's attributes as plain values."""
    values = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        values[kv.key] = getattr(kv.value, kind) if kind else None
    return values


def named(spans, service: str, name: str, kind=None) -> trace_pb2.Span:
    found = [span for owner, span in spans if owner == service and span.name == name and (kind is None or span.kind == kind)]
    assert len(found) == 1, f"{service} {name}: {len(found)} spans in {[(o, s.name) for o, s in spans]}"
    return found[0]


def tree(spans) -> str:
    """The trace as an indented tree, children in start order (printed with `pytest -s`)."""
    kinds = {SERVER: "SERVER", CLIENT: "CLIENT", PRODUCER: "PRODUCER", trace_pb2.Span.SPAN_KIND_INTERNAL: "INTERNAL"}
    children: dict[bytes, list] = {}
    for owner, span in sorted(spans, key=lambda pair: pair[1].start_time_unix_nano):
        children.setdefault(span.parent_span_id, []).append((owner, span))
    lines = []

    def walk(parent: bytes, depth: int):
        for owner, span in children.get(parent, []):
            links = f"  (links {len(span.links)})" if span.links else ""
            lines.append(f"{owner:<20}  {'  ' * depth}{kinds.get(span.kind, '?'):<8} {span.name}{links}")
            walk(span.span_id, depth + 1)

    walk(b"", 0)
    return "\n".join(lines)


def wait_for_trace(collector: Collector, trace_id: bytes, predicate, timeout: float = 30):
    """The trace's spans once `predicate(spans)` holds (the exporters send every second)."""
    return support.wait_until(lambda: (lambda spans: spans if predicate(spans) else None)(collector.trace(trace_id)),
                              timeout=timeout, interval=0.2)


def activate(stack: Stack, metadata=()) -> tuple[str, str]:
    """A new organization's Admin activates 2 licenses through the gateway; returns (organization id, project)."""
    org = stack.create_orgs(("Grace", "Hopper"))[0]
    product_id = stack.upsert_product("Traced Engine")
    entitlement_id = stack.transfer(org, [(product_id, 5)])
    token = stack.login(org.admin)
    project = unique("project-")
    stack.portal.Activate(G.ActivateRequest(
        entitlement_id=entitlement_id, product_id=product_id, quantity=2, project_name=project, project_manager="Grace",
        idempotency_key=unique("key-")), metadata=[("authorization", f"Bearer {token}"), *metadata], timeout=T)
    return org.id, project


def test_one_activation_is_one_trace_across_every_service_and_the_outbox(stack, collector):
    organization_id, project = activate(stack)

    def activation_span():
        for service, span in collector.all():
            if service == "portal-gateway" and span.name == "portal.gateway.v1.PortalService/Activate":
                return span
        return None

    root = support.wait_until(activation_span, timeout=30, interval=0.2)
    assert root.parent_span_id == b"" and root.kind == SERVER
    # Each process exports on its own schedule: wait until every one has sent its part.
    spans = wait_for_trace(collector, root.trace_id, lambda spans: {
        "portal-identity", "portal-entitlements", "portal-audit"} <= {owner for owner, span in spans if span.kind == SERVER})

    print("\n" + tree(spans))
    # The gateway: its server span, and client spans to identity (the session) and entitlements.
    assert attributes(root)["rpc.system"] == "grpc" and attributes(root)["rpc.grpc.status_code"] == 0
    assert attributes(root)["portal.organization_id"] == organization_id
    assert attributes(root)["portal.request_id"]
    authenticate = named(spans, "portal-gateway", "portal.identity.v1.IdentityService/Authenticate", CLIENT)
    to_entitlements = named(spans, "portal-gateway", "portal.entitlements.v1.EntitlementsService/Activate", CLIENT)
    assert authenticate.parent_span_id == root.span_id and to_entitlements.parent_span_id == root.span_id
    # The backends' server spans are children of the gateway's client spans.
    identity = named(spans, "portal-identity", "portal.identity.v1.IdentityService/Authenticate", SERVER)
    assert identity.parent_span_id == authenticate.span_id
    entitlements = named(spans, "portal-entitlements", "portal.entitlements.v1.EntitlementsService/Activate", SERVER)
    assert entitlements.parent_span_id == to_entitlements.span_id
    assert attributes(entitlements)["portal.organization_id"] == organization_id
    # The activation's transaction, and the outbox delivery continuing it and linked to it.
    transactions = [span for owner, span in spans if owner == "portal-entitlements" and span.name == "transaction entitlements"
                    and span.parent_span_id == entitlements.span_id]
    assert transactions and attributes(transactions[0])["db.system"] == (
        "postgresql" if support.backend() == "postgres" else "sqlite")
    delivery = named(spans, "portal-entitlements", "deliver audit", PRODUCER)
    assert delivery.parent_span_id in {span.span_id for span in transactions}
    assert [(link.trace_id, link.span_id) for link in delivery.links] == [(root.trace_id, delivery.parent_span_id)]
    # Audit's append, under the delivery.
    append_call = named(spans, "portal-entitlements", "portal.audit.v1.AuditService/AppendEvents", CLIENT)
    assert append_call.parent_span_id == delivery.span_id
    append = named(spans, "portal-audit", "portal.audit.v1.AuditService/AppendEvents", SERVER)
    assert append.parent_span_id == append_call.span_id
    # Every span of the trace hangs from its root.
    by_id = {span.span_id: span for _, span in spans}
    for _, span in spans:
        node = span
        while node.parent_span_id:
            assert node.parent_span_id in by_id, f"{span.name}: its parent is not in the trace"
            node = by_id[node.parent_span_id]
        assert node.span_id == root.span_id
    # Start and end times nest: children inside their parents (each process's own clock).
    assert root.start_time_unix_nano <= to_entitlements.start_time_unix_nano <= to_entitlements.end_time_unix_nano <= root.end_time_unix_nano


def test_log_lines_inside_a_call_carry_its_trace_and_span_ids(stack, collector):
    _, project = activate(stack)
    entitlements = support.wait_until(lambda: next(
        (span for service, span in collector.all() if service == "portal-entitlements"
         and span.name == "portal.entitlements.v1.EntitlementsService/Activate" and span.kind == SERVER
         and span.start_time_unix_nano > 0 and any(
             attributes(other).get("rpc.method") == "Activate" for _, other in collector.trace(span.trace_id))), None),
        timeout=30, interval=0.2)
    logged = [json.loads(line) for line in stack.entitlements_server.stderr_text(limit=400_000).splitlines() if line.startswith("{")]
    access = [line for line in logged if line.get("message") == "rpc" and line.get("trace_id") == entitlements.trace_id.hex()]
    assert access, "no access log line carries the activation's trace id"
    assert {line["span_id"] for line in access} >= {entitlements.span_id.hex()}
    untraced = [line for line in logged if line.get("message") == "applied migration"]
    assert untraced and all("trace_id" not in line for line in untraced)


def test_a_callers_trace_context_is_continued(stack, collector):
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with pytest.raises(grpc.RpcError):
        stack.portal.Login(G.LoginRequest(organization_id="org-none", email="nobody@example.com", password="wrong password 1"),
                           metadata=[("traceparent", f"00-{trace_id}-{parent_id}-01"), ("tracestate", "vendor=value")],
                           timeout=T)
    spans = wait_for_trace(collector, bytes.fromhex(trace_id), lambda spans: {"portal-gateway", "portal-identity"} <= {
        owner for owner, span in spans if span.kind == SERVER})
    login = named(spans, "portal-gateway", "portal.gateway.v1.PortalService/Login", SERVER)
    assert login.parent_span_id == bytes.fromhex(parent_id)
    assert login.trace_state == "vendor=value"
    identity = named(spans, "portal-identity", "portal.identity.v1.IdentityService/Login", SERVER)
    assert identity.trace_state == "vendor=value"
    # A caller's mistake is not the server's error.
    assert login.status.code != trace_pb2.Status.STATUS_CODE_ERROR


def test_an_unsampled_caller_is_not_recorded_anywhere(stack, collector):
    trace_id = uuid.uuid4().hex
    with pytest.raises(grpc.RpcError):
        stack.portal.Login(G.LoginRequest(organization_id="org-none", email="nobody@example.com", password="wrong password 2"),
                           metadata=[("traceparent", f"00-{trace_id}-00f067aa0ba902b7-00")], timeout=T)
    # The exporters send at least every second; three rounds later nothing of the trace has arrived.
    marker = activate(stack)  # a sampled call after it, which does arrive
    support.wait_until(lambda: any(attributes(span).get("portal.organization_id") == marker[0] for _, span in collector.all()),
                       timeout=30, interval=0.2)
    assert collector.trace(bytes.fromhex(trace_id)) == []


def test_a_zero_sampling_ratio_records_nothing_and_tells_the_next_service(portal_bin, tmp_path, collector):
    stack = TracedStack(portal_bin, tmp_path, f"127.0.0.1:{collector.port}", "--trace-sampling-ratio", "0")
    try:
        stack.start()
        before = len(collector.all())
        organization_id, _ = activate(stack)
        # The audit event arrives (so every service worked), yet no span of this stack does.
        support.wait_until(lambda: support.admin_metric(stack.admin_ports["audit-data"], "portal_rpc_calls_total",
                                                        method="AppendEvents", code="OK") > 0,
                           timeout=30, interval=0.2)
        time.sleep(2.5)  # two export rounds: a span recorded by mistake would have been sent by now
        assert [span.name for _, span in collector.all()[before:] if attributes(span).get("portal.organization_id") == organization_id] == []
    finally:
        stack.stop()


def test_a_dead_collector_changes_no_result_and_slows_no_call(portal_bin, tmp_path):
    dead = support.free_port()  # nothing listens here
    stack = TracedStack(portal_bin, tmp_path, f"127.0.0.1:{dead}")
    try:
        stack.start()
        activate(stack)
        durations = []
        for _ in range(20):
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as refused:
                stack.portal.WhoAmI(G.WhoAmIRequest(), timeout=T)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            durations.append(time.monotonic() - started)
        # A call never waits for the collector (its connection attempts take up to 5 s).
        assert max(durations) < 1.0, durations
        # The spans are dropped and counted, not kept.
        support.wait_until(lambda: support.admin_metric(stack.admin_ports["gateway-data"], "portal_trace_spans_dropped_total",
                                                        reason="export_failed") > 0, timeout=30, interval=0.2)
        assert support.admin_metric(stack.admin_ports["gateway-data"], "portal_trace_spans_exported_total") == 0
    finally:
        stack.stop()
