"""Several instances of every backend on one PostgreSQL server, and a gateway spread across them.

Three entitlements and three identity instances and two audit instances share their service's
database; the gateway calls each backend's instances in turn. Proved here: instances starting together
migrate once; 200 concurrent activations across instances against 50 unactivated licenses activate
exactly 50; invites stay unique; concurrent appenders on different audit instances keep the hash
chain unbroken; and the outbox relays of several instances record every event exactly once, in each
organization's order.

Runs with the PostgreSQL suite (PORTAL_TEST_BACKEND=postgres): SQLite has one writer per file.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import support

pytestmark = pytest.mark.skipif(support.backend() != "postgres", reason="several instances share a PostgreSQL database")

T = 15
P = support.protos()
G, I, E, A = P.gateway, P.identity, P.entitlements, P.audit
PASSWORD = "correct horse battery staple"


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def psql(url: str, sql: str) -> list[list[str]]:
    """Rows of `sql` on the database at `url`, as text."""
    server = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(query=""))
    out = subprocess.run(["psql", server, "-AtF", "\t", "-c", sql], capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


class Cluster:
    """The instances, their databases and stubs to each."""

    def __init__(self, portal_bin: str, root: Path):
        self.portal_bin, self.root = portal_bin, root
        self.processes: list[support.ServerProcess] = []
        self.channels: list[grpc.Channel] = []
        self.databases = {service: support.postgres_database(unique(f"{service}_")) for service in support.DATA_SERVICES}

    def instance(self, service: str, index: int, *args: str) -> support.ServerProcess:
        database = ["--database", self.databases[service]] if service in self.databases else []
        process = support.ServerProcess(
            [self.portal_bin, service, "--data-dir", str(self.root / f"{service}-{index}"), *database, *args],
            f"{service}-{index}", self.root / "logs")
        self.processes.append(process)
        return process

    def start(self) -> "Cluster":
        self.audit_admin_ports = [support.free_port() for _ in range(2)]
        self.audits = [self.instance("audit", i, "--admin-port", str(self.audit_admin_ports[i])) for i in range(2)]
        started = self.start_together(self.audits)
        audit = ",".join(process.address for process in started)
        self.identities = self.start_together([self.instance("identity", i, "--audit-address", audit) for i in range(3)])
        self.entitlements = self.start_together([self.instance("entitlements", i, "--audit-address", audit) for i in range(3)])
        self.gateway = self.instance(
            "gateway", 0, "--identity-address", ",".join(p.address for p in self.identities),
            "--entitlements-address", ",".join(p.address for p in self.entitlements), "--audit-address", audit).start()
        self.portal = P.gateway_grpc.PortalServiceStub(self.channel(self.gateway))
        return self

    @staticmethod
    def start_together(processes: list[support.ServerProcess]) -> list[support.ServerProcess]:
        with ThreadPoolExecutor(max_workers=len(processes)) as pool:
            return list(pool.map(lambda process: process.start(), processes))

    def channel(self, process: support.ServerProcess) -> grpc.Channel:
        channel = support.make_channel(process.port)
        self.channels.append(channel)
        return channel

    def identity(self, index: int):
        return P.identity_grpc.IdentityServiceStub(self.channel(self.identities[index % 3]))

    def entitlement_stub(self, index: int):
        return P.entitlements_grpc.EntitlementsServiceStub(self.channel(self.entitlements[index % 3]))

    def audit(self, index: int):
        return P.audit_grpc.AuditServiceStub(self.channel(self.audits[index % 2]))

    def invite_secret(self, email: str) -> str:
        """The invite secret mailed to `email` by whichever identity instance held the mail lease."""
        def found():
            for index in range(len(self.identities)):
                mails = support.invite_mails(self.root / f"identity-{index}", email, ())
                if mails:
                    return mails[0].secret
            return None
        secret = support.wait_until(found, timeout=support.MAIL_TIMEOUT)
        assert secret, f"no invite mail to {email} in any identity instance's spool"
        return secret

    def organization(self, index: int = 0) -> tuple[str, str]:
        """A new organization with an accepted first Admin; returns (organization id, Admin's session token)."""
        email = f"ada@{unique('org')}.example.com"
        organization = self.identity(index).CreateOrganization(I.CreateOrganizationRequest(
            name=f"Scale Co {unique()}", first_admin_email=email, idempotency_key=unique("key-")), timeout=T).organization
        self.identity(index + 1).AcceptInvite(I.AcceptInviteRequest(
            invite_secret=self.invite_secret(email), first_name="Ada", last_name="Lovelace", password=PASSWORD), timeout=T)
        token = self.portal.Login(G.LoginRequest(organization_id=organization.organization_id, email=email, password=PASSWORD),
                                  timeout=T).session_token
        return organization.organization_id, token

    def entitlement(self, organization_id: str, quantity: int) -> tuple[str, str]:
        """A product and an entitlement of `quantity` licenses of it; returns (entitlement id, product id)."""
        product_id, entitlement_id = unique("SKU-"), unique("ENT-")
        stub = self.entitlement_stub(0)
        stub.UpsertProduct(E.UpsertProductRequest(product=E.Product(
            product_id=product_id, name="Scale Engine", license_type="Subscription", product_description="engine",
            deployment_type="Cloud")), timeout=T)
        stub.TransferEntitlement(E.TransferEntitlementRequest(
            entitlement_id=entitlement_id, organization_id=organization_id, sales_order=unique("SO-"),
            order_date=Timestamp(seconds=1_767_225_600), lines=[E.TransferLine(product_id=product_id, quantity=quantity)]), timeout=T)
        return entitlement_id, product_id

    def stop(self) -> None:
        support.stop_all(self.processes, self.channels)


@pytest.fixture(scope="module")
def cluster(portal_bin, tmp_path_factory):
    cluster = Cluster(portal_bin, tmp_path_factory.mktemp("instances"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def test_instances_starting_together_migrate_once(cluster):
    for service, processes in (("entitlements", cluster.entitlements), ("identity", cluster.identities), ("audit", cluster.audits)):
        applied = sum(process.stderr_text(limit=10**7).count('"message":"applied migration"') for process in processes)
        versions = psql(cluster.databases[service], "SELECT count(*) FROM schema_migrations")[0][0]
        assert applied == int(versions), f"{service}: {applied} migrations applied by {len(processes)} instances, {versions} versions"


def test_two_hundred_activations_across_instances_activate_exactly_fifty(cluster):
    organization_id, token = cluster.organization()
    entitlement_id, product_id = cluster.entitlement(organization_id, 50)
    auth = [("authorization", f"Bearer {token}")]

    def activate(attempt: int) -> grpc.StatusCode:
        request = G.ActivateRequest(entitlement_id=entitlement_id, product_id=product_id, quantity=1, project_name=f"P{attempt}",
                                    project_manager="Grace", idempotency_key=f"key-{attempt}")
        try:
            if attempt % 2:  # half through the gateway (spread over the instances), half straight to an instance
                cluster.portal.Activate(request, metadata=auth, timeout=T)
            else:
                cluster.entitlement_stub(attempt // 2).Activate(E.ActivateRequest(
                    organization_id=organization_id, entitlement_id=entitlement_id, product_id=product_id, quantity=1,
                    project_name=f"P{attempt}", project_manager="Grace", idempotency_key=f"key-{attempt}"), timeout=T)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(activate, range(200)))
    assert outcomes.count(grpc.StatusCode.OK) == 50, {code: outcomes.count(code) for code in set(outcomes)}
    assert set(outcomes) == {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}
    held = cluster.portal.GetEntitlement(G.GetEntitlementRequest(entitlement_id=entitlement_id), metadata=auth, timeout=T)
    line = held.entitlement.lines[0]
    assert (line.activated_licenses, line.unactivated_licenses) == (50, 0)
    assert psql(cluster.databases["entitlements"], f"SELECT count(*) FROM activations WHERE entitlement_id = '{entitlement_id}'") == [["50"]]
    def served() -> list[int]:
        return [process.stderr_text(limit=10**7).count('EntitlementsService/Activate"') for process in cluster.entitlements]

    # Access-log lines are written by a thread of their own: give the last ones a moment.
    assert support.wait_until(lambda: all(count > 0 for count in served()), timeout=5), f"activations per instance: {served()}"


def test_invites_stay_unique_across_instances(cluster):
    organization_id, _ = cluster.organization()
    admin = psql(cluster.databases["identity"], f"SELECT id, first_name FROM members WHERE org_id = '{organization_id}'")[0]
    acting = [("x-portal-member-id", admin[0]), ("x-portal-display-name", "Ada Lovelace")]
    email = f"bob.{unique()}@example.com"

    def invite(attempt: int) -> grpc.StatusCode:
        try:
            cluster.identity(attempt).CreateInvite(I.CreateInviteRequest(
                organization_id=organization_id, email=email.upper() if attempt % 2 else email, role=I.ROLE_VIEWER),
                metadata=acting, timeout=T)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()

    with ThreadPoolExecutor(max_workers=30) as pool:
        outcomes = list(pool.map(invite, range(30)))
    assert outcomes.count(grpc.StatusCode.OK) == 1, outcomes
    assert set(outcomes) == {grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS}
    assert psql(cluster.databases["identity"], f"SELECT count(*) FROM invites WHERE org_id = '{organization_id}' AND state = 'pending' "
                                               f"AND lower(email) = lower('{email}')") == [["1"]]


def test_concurrent_appenders_on_different_instances_keep_the_chain_unbroken(cluster):
    organization_id = unique("org-")

    def append(client: int) -> None:
        stub = cluster.audit(client)
        for batch in range(10):
            events = [A.NewEvent(event_id=f"{organization_id}-{client}-{batch}-{i}", organization_id=organization_id,
                                 time=Timestamp(seconds=1_772_719_629 + i), event_type=A.EVENT_TYPE_MEMBERS,
                                 action=A.EVENT_ACTION_MEMBER_INVITED, message=f"client {client} batch {batch} #{i}", user="Ada")
                      for i in range(10)]
            stub.AppendEvents(A.AppendEventsRequest(events=events), timeout=T)
            stub.AppendEvents(A.AppendEventsRequest(events=events[:3]), timeout=T)  # a redelivery

    restarts = "portal_audit_append_restarts_total"
    before = sum(support.admin_metric(port, restarts, reason="event_id_stored") for port in cluster.audit_admin_ports)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(append, range(8)))
    for index in range(2):
        chain = cluster.audit(index).VerifyChain(A.VerifyChainRequest(organization_id=organization_id), timeout=T)
        assert chain.ok and chain.events_checked == 800, chain
    # Each redelivery was refused once by the unique index and appended again with its ids looked up.
    after = sum(support.admin_metric(port, restarts, reason="event_id_stored") for port in cluster.audit_admin_ports)
    assert after - before >= 80, (before, after)


def test_relays_of_several_instances_record_every_event_once_in_each_organizations_order(cluster):
    organizations = [cluster.organization(index) for index in range(3)]
    entitlements = [cluster.entitlement(organization_id, 1000) for organization_id, _ in organizations]
    admins = {organization_id: psql(cluster.databases["identity"], f"SELECT id FROM members WHERE org_id = '{organization_id}'")[0][0]
              for organization_id, _ in organizations}

    def change(step: int) -> None:
        index = step % 3
        organization_id, _ = organizations[index]
        entitlement_id, product_id = entitlements[index]
        if step % 2:
            cluster.entitlement_stub(step).Activate(E.ActivateRequest(
                organization_id=organization_id, entitlement_id=entitlement_id, product_id=product_id, quantity=1,
                project_name=f"P{step}", project_manager="Grace", idempotency_key=f"relay-{step}"), timeout=T)
        else:
            cluster.identity(step).CreateInvite(I.CreateInviteRequest(
                organization_id=organization_id, email=f"person{step}@example.com", role=I.ROLE_VIEWER),
                metadata=[("x-portal-member-id", admins[organization_id]), ("x-portal-display-name", "Ada Lovelace")], timeout=T)

    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(change, range(300)))

    for organization_id, _ in organizations:
        sources = {
            service: [row[0] for row in psql(cluster.databases[service],
                                             f"SELECT event_id FROM outbox WHERE topic = 'audit' AND org_id = '{organization_id}' ORDER BY seq")]
            for service in ("identity", "entitlements")
        }
        expected = sum(len(ids) for ids in sources.values())

        def recorded():
            response = cluster.audit(0).ListEvents(A.ListEventsRequest(organization_id=organization_id, page_size=1), timeout=T)
            return response.total_size >= expected

        assert support.wait_until(recorded, timeout=60, interval=0.5), f"{organization_id}: audit events still missing after 60 s"
        chain = [row[0] for row in psql(cluster.databases["audit"],
                                        f"SELECT event_id FROM events WHERE org_id = '{organization_id}' ORDER BY org_sequence")]
        assert len(chain) == len(set(chain)) == expected, "every event recorded exactly once"
        for service, ids in sources.items():
            source_ids = set(ids)
            assert [event_id for event_id in chain if event_id in source_ids] == ids, f"{service}'s events out of order in the audit chain"
        verdict = cluster.audit(1).VerifyChain(A.VerifyChainRequest(organization_id=organization_id), timeout=T)
        assert verdict.ok, verdict
