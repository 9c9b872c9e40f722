"""Reliable audit delivery across real processes: the identity service's outbox relay and the audit
service, with the audit service stopped for a while and the identity service killed mid-delivery."""

import subprocess
import time
import uuid

import grpc
import pytest

import support

T = 10
ADMIN = [("x-portal-member-id", "mem_admin"), ("x-portal-display-name", "Ada Lovelace")]


class FixedPortServer(support.ServerProcess):
    """A server that always listens on the same port, so it can be stopped and started again."""

    def __init__(self, argv, name, workdir, port):
        super().__init__(argv, name, workdir)
        self.fixed_port = port

    def start(self, timeout: float = support.STARTUP_TIMEOUT) -> "FixedPortServer":
        self.port = self.fixed_port
        self.stopped = self.signalled = False
        stderr = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL)
        finally:
            stderr.close()
        self._wait_healthy(timeout)
        return self

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.stopped = True


@pytest.fixture
def stack(portal_bin, tmp_path):
    """An audit service, and identity and entitlements services that relay to it, each on a fixed port."""
    audit_port, identity_port, entitlements_port = support.free_port(), support.free_port(), support.free_port()
    audit = FixedPortServer([portal_bin, "audit", "--data-dir", str(tmp_path / "audit")], "audit", tmp_path, audit_port)
    identity = FixedPortServer(
        [portal_bin, "identity", "--data-dir", str(tmp_path / "identity"), "--audit-address", f"127.0.0.1:{audit_port}"],
        "identity", tmp_path, identity_port)
    entitlements = FixedPortServer(
        [portal_bin, "entitlements", "--data-dir", str(tmp_path / "entitlements"), "--audit-address", f"127.0.0.1:{audit_port}"],
        "entitlements", tmp_path, entitlements_port)
    audit.start()
    identity.start()
    entitlements.start()
    yield audit, identity, entitlements
    for server in (entitlements, identity, audit):
        try:
            server.stop()
        finally:
            server.kill()


def stubs(pb, identity, audit):
    return (pb.identity_grpc.IdentityServiceStub(support.make_channel(identity.port)),
            pb.audit_grpc.AuditServiceStub(support.make_channel(audit.port)))


def new_organization(identity_stub, pb) -> str:
    return identity_stub.CreateOrganization(
        pb.identity.CreateOrganizationRequest(name="Outage Co", first_admin_email="admin@example.com", idempotency_key=uuid.uuid4().hex),
        timeout=T,
    ).organization.organization_id


def invite_many(identity_stub, pb, organization_id: str, count: int, prefix: str) -> None:
    futures = [
        identity_stub.CreateInvite.future(
            pb.identity.CreateInviteRequest(organization_id=organization_id, email=f"{prefix}{i}@example.com", role=pb.identity.ROLE_VIEWER),
            metadata=ADMIN, timeout=60)
        for i in range(count)
    ]
    for future in futures:
        future.result()


def event_count(audit_stub, pb, organization_id: str) -> int:
    return audit_stub.ListEvents(pb.audit.ListEventsRequest(organization_id=organization_id, page_size=1), timeout=T).total_size


def all_events(audit_stub, pb, organization_id: str) -> list:
    events, token = [], ""
    while True:
        page = audit_stub.ListEvents(
            pb.audit.ListEventsRequest(organization_id=organization_id, page_size=500, page_token=token, order_by="time asc"), timeout=T)
        events += page.events
        token = page.next_page_token
        if not token:
            return events


def wait_for_count(audit_stub, pb, organization_id: str, expected: int, timeout: float = 90) -> int:
    support.wait_until(lambda: event_count(audit_stub, pb, organization_id) >= expected, timeout=timeout, interval=0.25)
    time.sleep(1.5)  # anything extra (a duplicate) would arrive by now
    return event_count(audit_stub, pb, organization_id)


def activate_many(entitlements_stub, pb, organization_id: str, count: int) -> None:
    futures = [
        entitlements_stub.Activate.future(
            pb.entitlements.ActivateRequest(
                organization_id=organization_id, entitlement_id="ENT-OUTAGE", product_id="P-OUTAGE", quantity=1,
                project_name=f"Project {i}", project_manager="Grace Hopper", idempotency_key=f"outage-{i}"),
            metadata=ADMIN, timeout=60)
        for i in range(count)
    ]
    for future in futures:
        future.result()


def test_a_thousand_changes_made_while_audit_is_down_arrive_exactly_once(stack, pb):
    """Stop audit, make 500 member changes and 500 activations, start audit: exactly 1,000 new events,
    with the right types and user, in unbroken chains."""
    audit, identity, entitlements = stack
    identity_stub, audit_stub = stubs(pb, identity, audit)
    entitlements_stub = pb.entitlements_grpc.EntitlementsServiceStub(support.make_channel(entitlements.port))
    organization_id = new_organization(identity_stub, pb)
    entitlements_stub.UpsertProduct(pb.entitlements.UpsertProductRequest(product=pb.entitlements.Product(
        product_id="P-OUTAGE", name="Nexus Core", license_type="Subscription")), timeout=T)
    entitlements_stub.TransferEntitlement(pb.entitlements.TransferEntitlementRequest(
        entitlement_id="ENT-OUTAGE", organization_id=organization_id, sales_order="SO-1", order_date=support_timestamp(pb),
        lines=[pb.entitlements.TransferLine(product_id="P-OUTAGE", quantity=1000)]), timeout=T)
    assert wait_for_count(audit_stub, pb, organization_id, 2) == 2  # the first Admin's invite and the transfer

    audit.stop()
    invite_many(identity_stub, pb, organization_id, 500, "outage")
    activate_many(entitlements_stub, pb, organization_id, 500)
    time.sleep(1.0)  # the relays try and fail meanwhile
    audit.start()

    assert wait_for_count(audit_stub, pb, organization_id, 1002) == 1002
    events = all_events(audit_stub, pb, organization_id)
    assert len({event.event_id for event in events}) == 1002
    members = [e for e in events if e.event_type == pb.audit.EVENT_TYPE_MEMBERS and e.user != "system"]
    activations = [e for e in events if e.event_type == pb.audit.EVENT_TYPE_ACTIVATIONS]
    assert len(members) == 500 and len(activations) == 500
    assert all(event.user == "Ada Lovelace" and event.actor_member_id == "mem_admin" for event in members + activations)
    assert sorted(event.message for event in members) == sorted(f"Invited outage{i}@example.com as Viewer" for i in range(500))
    assert sorted(event.message for event in activations) == sorted(
        f"Activated 1 license of Nexus Core for project Project {i}" for i in range(500))
    chain = audit_stub.VerifyChain(pb.audit.VerifyChainRequest(organization_id=organization_id), timeout=T)
    assert chain.ok and chain.events_checked == 1002, chain


def support_timestamp(pb):
    from google.protobuf.timestamp_pb2 import Timestamp
    return Timestamp(seconds=1_772_000_000)


def test_killing_the_relaying_service_mid_delivery_loses_and_duplicates_nothing(stack, pb):
    """kill -9 the identity service while it relays; after a restart every event arrives once."""
    audit, identity, _ = stack
    identity_stub, audit_stub = stubs(pb, identity, audit)
    organization_id = new_organization(identity_stub, pb)
    invite_many(identity_stub, pb, organization_id, 600, "killed")
    identity.kill9()
    delivered_before_restart = event_count(audit_stub, pb, organization_id)
    assert delivered_before_restart <= 601

    identity.start()
    assert wait_for_count(audit_stub, pb, organization_id, 601) == 601
    events = all_events(audit_stub, pb, organization_id)
    assert len({event.event_id for event in events}) == 601
    chain = audit_stub.VerifyChain(pb.audit.VerifyChainRequest(organization_id=organization_id), timeout=T)
    assert chain.ok, chain
