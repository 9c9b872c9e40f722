"""Webhooks end to end: endpoints registered through the gateway (Admins only), deliveries POSTed
to a real HTTP receiver (Python's http.server) that checks every signature, retried after 500s and
timeouts, in order per endpoint, redelivered on request, signed by both secrets during a rotation,
given up after 24 hours (the audit service's clock moved), and nothing lost when the delivering
audit service is killed with SIGKILL mid-queue."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest

import support
import test_gateway
from test_audit_delivery import FixedPortServer, new_organization
from test_gateway import G, I, T, bearer, refused, unique

A = test_gateway.A
ADMIN = [("x-portal-member-id", "mem_admin"), ("x-portal-display-name", "Ada Lovelace")]
WEBHOOK_ARGS = ["--webhook-private-networks", "--webhook-timeout", "1"]


@dataclass
class Delivery:
    """One POST the receiver got."""

    headers: dict
    body: bytes
    received_at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["portal-event-id"]


@dataclass
class Receiver:
    """An HTTP endpoint on loopback that records every POST and answers the next ones as `script`
    says ("500", or "hang": no answer), then 200."""

    server: ThreadingHTTPServer = None
    deliveries: list[Delivery] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)  # event ids always answered 500
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/portal"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                delivery = Delivery({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with receiver.lock:
                    receiver.deliveries.append(delivery)
                    action = receiver.script.pop(0) if receiver.script else "ok"
                    if delivery.event_id in receiver.failing:
                        action = "500"
                if receiver.delay:
                    time.sleep(receiver.delay)
                if action == "hang":
                    time.sleep(3)  # past the service's 1 s timeout
                    return
                self.send_response(500 if action == "500" else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def event_ids(self) -> list[str]:
        with self.lock:
            return [d.event_id for d in self.deliveries]

    def wait_for(self, count: int, timeout: float = 30) -> list[Delivery]:
        assert support.wait_until(lambda: len(set(self.event_ids())) >= count, timeout=timeout, interval=0.05)
        with self.lock:
            return list(self.deliveries)


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def verify(delivery: Delivery, secret: str, tolerance: float = 300) -> bool:
    """The integrator's check (README): HMAC-SHA256 of `<timestamp>.<body>` with the secret matches one
    of the `v1=` signatures, compared in constant time, and the timestamp is recent."""
    timestamp = delivery.headers["portal-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    signatures = [part.split("=", 1)[1] for part in delivery.headers["portal-signature"].split(",") if part.startswith("v1=")]
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


class WebhookStack(test_gateway.Stack):
    """The gateway stack with an audit service that may deliver to loopback and times out after 1 s."""

    def launch(self, service: str, data_dir: str, *args: str) -> support.ServerProcess:
        extra = WEBHOOK_ARGS if service == "audit" else []
        return super().launch(service, data_dir, *args, *extra)


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory):
    stack = WebhookStack(portal_bin, tmp_path_factory.mktemp("webhook-stack"))
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_signed_deliveries_arrive_in_order_once_each_and_only_admins_manage_webhooks(stack, receiver):
    """An Admin registers the receiver for member events; 20 invites made through the gateway arrive
    as 20 POSTs in the order recorded, each verifying against the secret, naming its event; the
    deliveries list shows them delivered. Viewers cannot manage webhooks; bad URLs name the field."""
    (org,) = stack.create_orgs(("Hana", "Hook"))
    viewer = stack.add_member(org, "Vito", "Viewer")
    token, viewer_token = stack.login(org.admin), stack.login(viewer)
    for rpc, request in [("CreateWebhook", G.CreateWebhookRequest(url=receiver.url)), ("ListWebhooks", G.ListWebhooksRequest())]:
        refused(lambda: stack.call(rpc, request, bearer(viewer_token)), grpc.StatusCode.PERMISSION_DENIED)
    for url, words in [("ftp://127.0.0.1/x", "https://"), ("http://10.1.2.3/x", "https://"), ("https://0.0.0.0/x", "cannot receive"),
                       ("https://user:pw@127.0.0.1/x", "user name"), ("https://127.0.0.1:99999/x", "port")]:
        message = refused(lambda: stack.call("CreateWebhook", G.CreateWebhookRequest(url=url), bearer(token)),
                          grpc.StatusCode.INVALID_ARGUMENT)
        assert message.startswith("url") and words in message, (url, message)

    created = stack.as_(token, "CreateWebhook", G.CreateWebhookRequest(
        url=receiver.url, event_types=[A.EVENT_TYPE_MEMBERS], description="CRM sync"))
    secret, webhook = created.secret, created.webhook
    assert secret.startswith("whsec_") and webhook.webhook_id.startswith("whk_") and webhook.enabled
    listed = stack.as_(token, "ListWebhooks", G.ListWebhooksRequest()).webhooks
    assert [w.webhook_id for w in listed] == [webhook.webhook_id] and "whsec_" not in str(listed)

    emails = [f"hooked{i}.{unique()}@{org.domain}" for i in range(20)]
    for email in emails:
        stack.as_(token, "InviteMember", G.InviteMemberRequest(email=email, role=I.ROLE_VIEWER))
    deliveries = receiver.wait_for(20)
    assert len(deliveries) == 20, "a delivery arrived twice without a failure"
    events = [d.json["event"] for d in deliveries]
    assert [e["message"] for e in events] == [f"Invited {email} as Viewer" for email in emails]
    sequences = [int(e["sequence"]) for e in events]
    assert sequences == sorted(sequences)
    for delivery in deliveries:
        assert verify(delivery, secret), delivery.headers
        assert not verify(delivery, secret + "x")
        assert delivery.headers["portal-event-id"] == delivery.json["event"]["eventId"]
        assert delivery.headers["portal-webhook-id"] == webhook.webhook_id == delivery.json["webhookId"]
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.json["event"]["organizationId"] == org.id

    assert support.wait_until(lambda: len(stack.as_(token, "ListWebhookDeliveries", G.ListWebhookDeliveriesRequest(
        webhook_id=webhook.webhook_id, state=A.DELIVERY_STATE_DELIVERED)).deliveries) == 20, timeout=10)
    page = stack.as_(token, "ListWebhookDeliveries", G.ListWebhookDeliveriesRequest(webhook_id=webhook.webhook_id, page_size=5))
    assert len(page.deliveries) == 5 and page.next_page_token
    assert [d.sequence for d in page.deliveries] == sorted(sequences, reverse=True)[:5]
    assert all(d.attempts == 1 and d.last_status == 200 for d in page.deliveries)


def test_failed_attempts_are_retried_with_backoff_and_hold_later_events_back(stack, receiver):
    """The first event is answered 500, 500, then not at all (past the 1 s timeout), then 200; the
    second waits behind it. Both arrive, in order, the first after four attempts, recorded so."""
    (org,) = stack.create_orgs(("Rita", "Retry"))
    token = stack.login(org.admin)
    webhook = stack.as_(token, "CreateWebhook", G.CreateWebhookRequest(url=receiver.url)).webhook
    receiver.script = ["500", "500", "hang"]
    started = time.monotonic()
    for name in ("first", "second"):
        stack.as_(token, "InviteMember", G.InviteMemberRequest(email=f"{name}.{unique()}@{org.domain}", role=I.ROLE_VIEWER))
    assert support.wait_until(lambda: len(receiver.event_ids()) >= 5, timeout=40)
    ids = receiver.event_ids()
    assert ids[:4] == [ids[0]] * 4 and ids[4] != ids[0] and len(ids) == 5, ids
    gaps = [b.received_at - a.received_at for a, b in zip(receiver.deliveries, receiver.deliveries[1:4])]
    assert gaps[0] >= 0.7 and gaps[1] >= 1.5, f"no backoff between attempts: {gaps}"
    assert time.monotonic() - started < 30
    assert support.wait_until(lambda: stack.as_(token, "ListWebhookDeliveries", G.ListWebhookDeliveriesRequest(
        webhook_id=webhook.webhook_id, state=A.DELIVERY_STATE_DELIVERED)).deliveries[-1:] and len(stack.as_(
            token, "ListWebhookDeliveries", G.ListWebhookDeliveriesRequest(
                webhook_id=webhook.webhook_id, state=A.DELIVERY_STATE_DELIVERED)).deliveries) == 2, timeout=10)
    first = stack.as_(token, "ListWebhookDeliveries", G.ListWebhookDeliveriesRequest(webhook_id=webhook.webhook_id)).deliveries[-1]
    assert first.event_id == ids[0] and first.attempts == 4 and first.last_status == 200 and first.last_error == ""


def test_rotation_signs_with_both_secrets_and_redelivery_repeats_an_event(stack, receiver):
    """After rotating, deliveries carry a signature for the new secret and one for the old; a
    redelivery sends the same event (same Portal-Event-Id) under a new delivery id."""
    (org,) = stack.create_orgs(("Olga", "Overlap"))
    token = stack.login(org.admin)
    created = stack.as_(token, "CreateWebhook", G.CreateWebhookRequest(url=receiver.url))
    rotated = stack.as_(token, "UpdateWebhook", G.UpdateWebhookRequest(webhook_id=created.webhook.webhook_id, rotate_secret=True))
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret
    assert rotated.webhook.previous_secret_expires_at.seconds > time.time() + 23 * 3600
    stack.as_(token, "InviteMember", G.InviteMemberRequest(email=f"rotated.{unique()}@{org.domain}", role=I.ROLE_VIEWER))
    (delivery,) = receiver.wait_for(1)
    assert delivery.headers["portal-signature"].count("v1=") == 2
    assert verify(delivery, rotated.secret) and verify(delivery, created.secret)

    again = stack.as_(token, "RedeliverWebhookEvent", G.RedeliverWebhookEventRequest(
        webhook_id=created.webhook.webhook_id, event_id=delivery.event_id)).delivery
    assert again.event_id == delivery.event_id and again.state == A.DELIVERY_STATE_PENDING
    assert support.wait_until(lambda: len(receiver.deliveries) == 2, timeout=10)
    repeat = receiver.deliveries[1]
    assert repeat.event_id == delivery.event_id and repeat.headers["portal-delivery-id"] == again.delivery_id
    assert repeat.headers["portal-delivery-id"] != delivery.headers["portal-delivery-id"]

    paused = stack.as_(token, "UpdateWebhook", G.UpdateWebhookRequest(
        webhook_id=created.webhook.webhook_id, set_enabled=True, enabled=False)).webhook
    assert not paused.enabled
    stack.as_(token, "InviteMember", G.InviteMemberRequest(email=f"paused.{unique()}@{org.domain}", role=I.ROLE_VIEWER))
    stack.as_(token, "DeleteWebhook", G.DeleteWebhookRequest(webhook_id=created.webhook.webhook_id))
    refused(lambda: stack.call("ListWebhookDeliveries", G.ListWebhookDeliveriesRequest(webhook_id=created.webhook.webhook_id),
                               bearer(token)), grpc.StatusCode.NOT_FOUND)
    assert len(receiver.deliveries) == 2, "a paused webhook received an event"


def new_event(pb, organization_id: str, index: int):
    from google.protobuf.timestamp_pb2 import Timestamp
    return pb.audit.NewEvent(event_id=f"{organization_id}-{index}", organization_id=organization_id,
                             time=Timestamp(seconds=1_772_000_000 + index), event_type=pb.audit.EVENT_TYPE_LICENSES,
                             action=pb.audit.EVENT_ACTION_ENTITLEMENT_TRANSFERRED, message=f"Event {index}", user="system")


def test_a_delivery_failing_for_24_hours_is_given_up_and_the_next_one_goes_out(portal_bin, start_server, receiver, pb, tmp_path):
    """An endpoint answering 500 to one event: after the audit service's clock moves 25 hours on, that
    delivery is marked failed (visible with its attempts and last status) and the next event arrives."""
    clock_args, admin_port = support.testing_clock_args()
    audit = start_server([portal_bin, "audit", "--data-dir", str(tmp_path / "audit"), *WEBHOOK_ARGS, *clock_args], "audit")
    stub = pb.audit_grpc.AuditServiceStub(support.make_channel(audit.port))
    organization_id = f"org-{unique()}"
    webhook = stub.CreateWebhook(pb.audit.CreateWebhookRequest(organization_id=organization_id, url=receiver.url), timeout=T).webhook
    receiver.failing.add(f"{organization_id}-1")
    stub.AppendEvents(pb.audit.AppendEventsRequest(events=[new_event(pb, organization_id, 1), new_event(pb, organization_id, 2)]), timeout=T)
    assert support.wait_until(lambda: len(receiver.event_ids()) >= 2, timeout=20)  # two attempts of the first event
    assert set(receiver.event_ids()) == {f"{organization_id}-1"}, "the second event overtook the first"

    support.advance_clock(admin_port, 25 * 3600)
    assert support.wait_until(lambda: f"{organization_id}-2" in receiver.event_ids(), timeout=20)
    deliveries = {d.event_id: d for d in stub.ListDeliveries(pb.audit.ListDeliveriesRequest(
        organization_id=organization_id, webhook_id=webhook.webhook_id), timeout=T).deliveries}
    failed = deliveries[f"{organization_id}-1"]
    assert failed.state == pb.audit.DELIVERY_STATE_FAILED and failed.attempts >= 3 and failed.last_status == 500, failed
    assert failed.last_error == "HTTP 500" and failed.finished_at.seconds > 0
    assert support.wait_until(lambda: stub.ListDeliveries(pb.audit.ListDeliveriesRequest(
        organization_id=organization_id, webhook_id=webhook.webhook_id, state=pb.audit.DELIVERY_STATE_DELIVERED),
        timeout=T).deliveries, timeout=10)


def test_killing_the_delivering_audit_service_loses_nothing(portal_bin, receiver, pb, tmp_path):
    """identity records 200 member changes while the audit service delivers them to a slow endpoint;
    the audit service is killed with SIGKILL mid-queue and started again: every event arrives, in the
    order recorded; at most the delivery in flight at the kill arrives twice, with the same event id."""
    audit_port, identity_port = support.free_port(), support.free_port()
    audit = FixedPortServer([portal_bin, "audit", "--data-dir", str(tmp_path / "audit"), *WEBHOOK_ARGS], "audit", tmp_path, audit_port)
    identity = FixedPortServer([portal_bin, "identity", "--data-dir", str(tmp_path / "identity"),
                                "--audit-address", f"127.0.0.1:{audit_port}"], "identity", tmp_path, identity_port)
    audit.start()
    identity.start()
    try:
        identity_stub = pb.identity_grpc.IdentityServiceStub(support.make_channel(identity.port))
        audit_stub = pb.audit_grpc.AuditServiceStub(support.make_channel(audit.port))
        organization_id = new_organization(identity_stub, pb)
        # The webhook receives what is recorded after it exists: the first Admin's invite first.
        assert support.wait_until(lambda: audit_stub.ListEvents(
            pb.audit.ListEventsRequest(organization_id=organization_id), timeout=T).total_size == 1, timeout=20)
        audit_stub.CreateWebhook(pb.audit.CreateWebhookRequest(organization_id=organization_id, url=receiver.url), timeout=T)
        receiver.delay = 0.02
        for i in range(200):
            identity_stub.CreateInvite(pb.identity.CreateInviteRequest(
                organization_id=organization_id, email=f"killed{i}@example.com", role=pb.identity.ROLE_VIEWER), metadata=ADMIN, timeout=60)
        assert support.wait_until(lambda: len(set(receiver.event_ids())) >= 40, timeout=60)
        audit.kill9()
        delivered_before = len(set(receiver.event_ids()))
        assert delivered_before < 201, "everything was delivered before the kill"
        audit.start()
        def recorded():
            return audit_stub.ListEvents(pb.audit.ListEventsRequest(organization_id=organization_id, page_size=500), timeout=T).events
        assert support.wait_until(lambda: len(recorded()) == 201 and set(receiver.event_ids()) == {
            e.event_id for e in recorded() if e.sequence > 1}, timeout=120, interval=0.5), "events were not delivered"
        time.sleep(1.0)  # a duplicate beyond the one in flight would arrive by now
        events = [e for e in recorded() if e.sequence > 1]
        ids = receiver.event_ids()
        first_seen = list(dict.fromkeys(ids))
        sequence_of = {e.event_id: e.sequence for e in events}
        assert [sequence_of[i] for i in first_seen] == sorted(sequence_of.values()), "delivered out of order"
        assert len(ids) - len(first_seen) <= 1, f"{len(ids) - len(first_seen)} deliveries repeated"
    finally:
        for server in (identity, audit):
            try:
                server.stop()
            finally:
                server.kill()


def test_portalctl_manages_webhooks_and_shows_their_deliveries(stack, receiver, portal_bin, tmp_path):
    """`portalctl webhooks create … --json` prints the secret once; `webhooks` lists; a change arrives
    signed with it; `webhooks deliveries` shows it delivered; `update --rotate-secret` and `delete` work."""
    (org,) = stack.create_orgs(("Cleo", "Cli"))
    portalctl = [str(Path(portal_bin).parent / "portalctl")]
    common = ["--gateway", stack.gateway_server.address, "--session", str(tmp_path / "session"), "--json"]

    def run(*args: str) -> dict:
        done = subprocess.run(portalctl + list(args) + common, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, f"portalctl {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else {}

    run("login", "--org", org.id, "--email", org.admin.email, "--password", org.admin.password)
    created = run("webhooks", "create", receiver.url, "--type", "members", "--description", "CRM")
    assert created["secret"].startswith("whsec_") and created["event_types"] == ["MEMBERS"]
    assert [w["webhook_id"] for w in run("webhooks")["webhooks"]] == [created["webhook_id"]]
    assert "secret" not in run("webhooks")["webhooks"][0]
    stack.as_(stack.login(org.admin), "InviteMember", G.InviteMemberRequest(email=f"cli.{unique()}@{org.domain}", role=I.ROLE_VIEWER))
    (delivery,) = receiver.wait_for(1)
    assert verify(delivery, created["secret"])
    assert support.wait_until(lambda: [d["state"] for d in run("webhooks", "deliveries", created["webhook_id"])["deliveries"]]
                              == ["delivered"], timeout=10)
    rotated = run("webhooks", "update", created["webhook_id"], "--rotate-secret", "--pause")
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"] and rotated["enabled"] is False
    run("webhooks", "delete", created["webhook_id"])
    assert run("webhooks")["webhooks"] == []
