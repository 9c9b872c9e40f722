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
    """An audit service and an identity service that relays to it, each on a fixed port."""
    audit_port, identity_port = support.free_port(), support.free_port()
    audit = FixedPortServer([portal_bin, "audit", "--data-dir", str(tmp_path / "audit")], "audit", tmp_path, audit_port)
    identity = FixedPortServer(
        [portal_bin, "identity", "--data-dir", str(tmp_path / "identity"), "--audit-address", f"127.0.0.1:{audit_port}"],
        "identity", tmp_path, identity_port)
    audit.start()
    identity.start()
    yield audit, identity
    for server in (identity, audit):
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


def test_a_thousand_changes_made_while_audit_is_down_arrive_exactly_once(stack, pb):
    """Stop audit, make 1,000 member changes, start audit: exactly 1,000 new events, right type and user."""
    audit, identity = stack
    identity_stub, audit_stub = stubs(pb, identity, audit)
    organization_id = new_organization(identity_stub, pb)
    assert wait_for_count(audit_stub, pb, organization_id, 1) == 1  # the first Admin's invite

    audit.stop()
    invite_many(identity_stub, pb, organization_id, 1000, "outage")
    time.sleep(1.0)  # the relay tries and fails meanwhile
    audit.start()

    assert wait_for_count(audit_stub, pb, organization_id, 1001) == 1001
    events = all_events(audit_stub, pb, organization_id)
    new = events[1:]
    assert len({event.event_id for event in events}) == 1001
    assert all(event.event_type == pb.audit.EVENT_TYPE_MEMBERS for event in new)
    assert all(event.user == "Ada Lovelace" and event.actor_member_id == "mem_admin" for event in new)
    assert sorted(event.message for event in new) == sorted(f"Invited outage{i}@example.com as Viewer" for i in range(1000))
    chain = audit_stub.VerifyChain(pb.audit.VerifyChainRequest(organization_id=organization_id), timeout=T)
    assert chain.ok and chain.events_checked == 1001, chain


def test_killing_the_relaying_service_mid_delivery_loses_and_duplicates_nothing(stack, pb):
    """kill -9 the identity service while it relays; after a restart every event arrives once."""
    audit, identity = stack
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
