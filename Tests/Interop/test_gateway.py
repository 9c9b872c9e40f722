"""The gateway (portal.gateway.v1.PortalService) over real gRPC, in front of real identity,
entitlements and audit processes.

One stack of four processes serves the module. Organizations, invites, products and transfers are
set up through the backends' internal RPCs; everything under test goes through the gateway with a
bearer token from its Login. Covered: the authorisation matrix (every RPC × every kind of caller),
tenancy, the dashboard against the entitlements backend's summary, one end-to-end test per portal
module (sign-in, licensing, activations log, audit log, members), how fast a deleted member or a
role change bites, a backend that is down, and caller deadlines.
"""

from __future__ import annotations

import csv
import datetime
import io
import itertools
import json
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import support

T = 10
P = support.protos()
G, I, E, A = P.gateway, P.identity, P.entitlements, P.audit

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED

PASSWORD = "correct horse battery staple"
ACTIVATIONS_CSV_HEADER = "Activation Date,Product Name,Quantity,Project Name,Project Manager,Activated By,Entitlement ID,Serial Number"
AUDIT_CSV_HEADER = "Date & Time,Message,Type,User"
AUDIT_DELIVERY_TIMEOUT = 30.0
STREAMING_RPCS = {"ExportActivationsCsv", "ExportAuditEventsCsv"}
LIVE_RPCS = {"WatchAuditEvents"}  # streams that never end by themselves: read up to the first heartbeat
RPCS = [method.name for method in G.DESCRIPTOR.services_by_name["PortalService"].methods]

_counter = itertools.count(1)


def unique(prefix: str = "") -> str:
    """A short string unique within the run, for emails, ids and project names."""
    return f"{prefix}{next(_counter)}x{uuid.uuid4().hex[:6]}"


def bearer(token: str) -> list[tuple[str, str]]:
    """The `authorization` metadata for a session token."""
    return [("authorization", f"Bearer {token}")]


def now_timestamp(offset_seconds: float = 0.0) -> Timestamp:
    """The current time (plus an offset) as a protobuf Timestamp."""
    moment = time.time() + offset_seconds
    return Timestamp(seconds=int(moment), nanos=int((moment % 1) * 1e9))


def parse_csv(text: str) -> list[list[str]]:
    """The rows of an RFC 4180 text."""
    return list(csv.reader(io.StringIO(text, newline=""), strict=True))


def csv_moment(cell: str) -> datetime.datetime:
    """A CSV time cell (`DD MMM YYYY, HH:MM:SS`) as a naive datetime."""
    return datetime.datetime.strptime(cell, "%d %b %Y, %H:%M:%S")


# --------------------------------------------------------------------------------------------
# The stack and the people in it


@dataclass
class Account:
    """A member with the password they log in with."""

    member: object  # portal.identity.v1.Member
    password: str = PASSWORD

    @property
    def member_id(self) -> str:
        return self.member.member_id

    @property
    def organization_id(self) -> str:
        return self.member.organization_id

    @property
    def email(self) -> str:
        return self.member.email

    @property
    def display_name(self) -> str:
        return self.member.display_name


@dataclass
class Org:
    """An organization and its first Admin."""

    id: str
    domain: str
    admin: Account


class Stack:
    """The four services as separate processes, with stubs for the backends and the gateway."""

    def __init__(self, portal_bin: str, root):
        self.portal_bin = portal_bin
        self.root = root
        self.identity_data = root / "identity-data"
        self.processes: list[support.ServerProcess] = []
        self.channels: list[grpc.Channel] = []

    def start(self) -> "Stack":
        """Starts audit, then identity and entitlements (relaying to audit), then the gateway."""
        self.audit_server = self.launch("audit", "audit-data")
        audit_address = self.audit_server.address
        self.identity_server = self.launch("identity", "identity-data", "--audit-address", audit_address)
        self.entitlements_server = self.launch("entitlements", "entitlements-data", "--audit-address", audit_address)
        self.gateway_server = self.start_gateway("gateway", audit_address)
        self.identity = P.identity_grpc.IdentityServiceStub(self.channel(self.identity_server.port))
        self.entitlements = P.entitlements_grpc.EntitlementsServiceStub(self.channel(self.entitlements_server.port))
        self.audit = P.audit_grpc.AuditServiceStub(self.channel(self.audit_server.port))
        self.portal = P.gateway_grpc.PortalServiceStub(self.channel(self.gateway_server.port))
        return self

    def launch(self, service: str, data_dir: str, *args: str) -> support.ServerProcess:
        """Starts `portal <service>` on a free port and waits until it is healthy."""
        process = support.ServerProcess(
            [self.portal_bin, service, "--data-dir", str(self.root / data_dir), "--log-level", "info", *args],
            f"{service}-{unique()}", self.root / "logs")
        self.processes.append(process)
        return process.start()

    def start_gateway(self, name: str, audit_address: str, entitlements_address: str | None = None) -> support.ServerProcess:
        """Starts a gateway over this stack's identity and entitlements and the given audit address."""
        return self.launch(
            "gateway", f"{name}-data",
            "--identity-address", self.identity_server.address,
            "--entitlements-address", entitlements_address or self.entitlements_server.address,
            "--audit-address", audit_address)

    def channel(self, port: int) -> grpc.Channel:
        """A grpcio channel closed when the stack stops."""
        channel = support.make_channel(port)
        self.channels.append(channel)
        return channel

    def stop(self) -> None:
        """Stops every process, gateways first, and reports any unclean exit afterwards."""
        support.stop_all(self.processes, self.channels)

    # -- internal setup through the backends

    @staticmethod
    def acting(account: Account) -> list[tuple[str, str]]:
        """The metadata a backend reads the acting member from."""
        return [("x-portal-member-id", account.member_id), ("x-portal-display-name", account.display_name)]

    def spool(self) -> set[str]:
        """Names of the mail spool's files now."""
        return support.spool_files(self.identity_data)

    def secret_for(self, email: str, before: set[str]) -> str:
        """The secret of the next invite mail to `email` (after the spool files `before`)."""
        return support.wait_for_invite_secret(self.identity_data, email, before)

    def accept(self, secret: str, first: str, last: str) -> Account:
        """Accepts an invite on identity directly and returns the new member."""
        member = self.identity.AcceptInvite(
            I.AcceptInviteRequest(invite_secret=secret, first_name=first, last_name=last, password=PASSWORD), timeout=T).member
        return Account(member)

    def create_orgs(self, *admins: tuple[str, str]) -> list[Org]:
        """Organizations whose first Admins (first, last) have accepted their invites."""
        before = self.spool()
        pending = []
        for first, last in admins:
            domain = f"{unique('org')}.example.com"
            email = f"{first.lower()}.{last.lower()}@{domain}"
            created = self.identity.CreateOrganization(
                I.CreateOrganizationRequest(name=f"{last} Co {unique()}", first_admin_email=email, idempotency_key=unique("key-")),
                timeout=T)
            pending.append((created.organization.organization_id, domain, email, first, last))
        orgs = []
        for organization_id, domain, email, first, last in pending:
            orgs.append(Org(organization_id, domain, self.accept(self.secret_for(email, before), first, last)))
        return orgs

    def invite(self, org: Org, email: str, role=I.ROLE_VIEWER):
        """Creates an invite on identity directly, acting as the organization's Admin."""
        return self.identity.CreateInvite(
            I.CreateInviteRequest(organization_id=org.id, email=email, role=role), metadata=self.acting(org.admin), timeout=T).invite

    def add_members(self, org: Org, *people: tuple[str, str, int]) -> list[Account]:
        """Members (first, last, role) invited and accepted through identity directly."""
        before = self.spool()
        emails = []
        for first, last, role in people:
            email = f"{first.lower()}.{unique()}@{org.domain}"
            self.invite(org, email, role)
            emails.append(email)
        return [self.accept(self.secret_for(email, before), first, last) for email, (first, last, _) in zip(emails, people)]

    def add_member(self, org: Org, first: str, last: str, role=I.ROLE_VIEWER) -> Account:
        """One member (see `add_members`)."""
        return self.add_members(org, (first, last, role))[0]

    def upsert_product(self, name: str) -> str:
        """A new catalog product; returns its id."""
        product_id = unique("SKU-")
        self.entitlements.UpsertProduct(E.UpsertProductRequest(product=E.Product(
            product_id=product_id, name=name, license_type="Subscription", product_description=f"{name} engine",
            deployment_type="Cloud")), timeout=T)
        return product_id

    def transfer(self, org: Org, lines: list[tuple[str, int]], po: str = "") -> str:
        """Transfers a new entitlement with `lines` (product id, quantity) to the organization."""
        entitlement_id = unique("ENT-")
        self.entitlements.TransferEntitlement(E.TransferEntitlementRequest(
            entitlement_id=entitlement_id, organization_id=org.id, sales_order=unique("SO-"), po_number=po,
            order_date=Timestamp(seconds=1_767_225_600),
            lines=[E.TransferLine(product_id=product_id, quantity=quantity) for product_id, quantity in lines]), timeout=T)
        return entitlement_id

    # -- the gateway

    def login(self, account: Account) -> str:
        """Logs in through the gateway and returns the session token."""
        return self.portal.Login(G.LoginRequest(
            organization_id=account.organization_id, email=account.email, password=account.password), timeout=T).session_token

    def call(self, rpc: str, request, metadata=(), timeout: float = T):
        """Calls a gateway RPC; a streaming export is read to its end and returned as text."""
        method = getattr(self.portal, rpc)
        if rpc in LIVE_RPCS:
            return until_heartbeat(method(request, metadata=list(metadata), timeout=timeout))
        if rpc in STREAMING_RPCS:
            return b"".join(piece.chunk for piece in method(request, metadata=list(metadata), timeout=timeout)).decode("utf-8")
        return method(request, metadata=list(metadata), timeout=timeout)

    def as_(self, token: str, rpc: str, request, timeout: float = T):
        """Calls a gateway RPC with a bearer token, failing readably when it is refused."""
        try:
            return self.call(rpc, request, bearer(token), timeout)
        except grpc.RpcError as error:
            pytest.fail(f"{rpc}: expected OK, got {error.code().name}: {error.details()!r}", pytrace=False)


def until_heartbeat(stream) -> list:
    """The messages of a live stream up to and including its first heartbeat; the call is then cancelled."""
    messages = []
    for message in stream:
        messages.append(message)
        if message.heartbeat:
            break
    stream.cancel()
    return messages


def outcome(call: Callable[[], object]) -> tuple[grpc.StatusCode, object]:
    """Runs `call` and returns (status code, response or RpcError)."""
    try:
        return OK, call()
    except grpc.RpcError as error:
        return error.code(), error


def refused(call: Callable[[], object], code: grpc.StatusCode) -> str:
    """Asserts `call` fails with `code`; returns the status message."""
    got, result = outcome(call)
    detail = result.details() if got != OK else result
    assert got == code, f"expected {code.name}, got {got.name}: {detail!r}"
    return result.details() or ""


def poll_code(call: Callable[[], object], code: grpc.StatusCode, timeout: float) -> float | None:
    """Repeats `call` until it fails with `code`; returns the seconds that took, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        got, _ = outcome(call)
        if got == code:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


@dataclass
class World:
    """The module's stack and the organizations, people, products and sessions the tests share.

    Organization A holds product A on a large entitlement, a Viewer, a bystander member (the
    target of member changes) and a pending invite; organization B holds product B. The deleted
    member's and the logged-out session's tokens both belong to A.
    """

    stack: Stack
    org_a: Org
    org_b: Org
    viewer_a: Account
    bystander_a: Account
    product_a: str
    product_a_name: str
    product_b: str
    entitlement_a: str
    entitlement_b: str
    invite_a: object
    webhook_a: str = ""
    event_a: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    def account(self, caller: str) -> Account | None:
        """The account of a signed-in caller (admin_a, viewer_a, admin_b); None for the others."""
        return {"admin_a": self.org_a.admin, "viewer_a": self.viewer_a, "admin_b": self.org_b.admin}.get(caller)

    def metadata(self, caller: str, fresh: bool = False) -> list[tuple[str, str]]:
        """The metadata a caller sends; `fresh` logs a real caller in again for a session of its own."""
        if caller == "no_token":
            return []
        if caller == "unknown_token":
            return bearer(secrets.token_urlsafe(32))
        account = self.account(caller)
        if account is not None and fresh:
            return bearer(self.stack.login(account))
        return bearer(self.tokens[caller])


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory):
    """Audit, identity, entitlements and a gateway, started once for the module."""
    stack = Stack(portal_bin, tmp_path_factory.mktemp("gateway-stack"))
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def world(stack) -> World:
    """Organizations A and B with their products, people and sessions."""
    org_a, org_b = stack.create_orgs(("Alice", "Anders"), ("Boris", "Brandt"))
    viewer_a, bystander_a, doomed_a = stack.add_members(
        org_a, ("Vera", "Viewer", I.ROLE_VIEWER), ("Bert", "Bystander", I.ROLE_VIEWER), ("Dora", "Doomed", I.ROLE_VIEWER))
    product_a_name = f"Nexus Core {unique()}"
    product_a, product_b = stack.upsert_product(product_a_name), stack.upsert_product(f"Orbit Mixer {unique()}")
    w = World(
        stack=stack, org_a=org_a, org_b=org_b, viewer_a=viewer_a, bystander_a=bystander_a,
        product_a=product_a, product_a_name=product_a_name, product_b=product_b,
        entitlement_a=stack.transfer(org_a, [(product_a, 100_000)], po="PO-A"),
        entitlement_b=stack.transfer(org_b, [(product_b, 100_000)], po="PO-B"),
        invite_a=stack.invite(org_a, f"pending.{unique()}@{org_a.domain}"),
    )
    for caller in ("admin_a", "viewer_a", "admin_b"):
        w.tokens[caller] = stack.login(w.account(caller))
    # A paused webhook of A's (nothing is queued for it but what RedeliverWebhookEvent asks for), on
    # a public documentation address the services never reach.
    w.webhook_a = stack.as_(w.tokens["admin_a"], "CreateWebhook", G.CreateWebhookRequest(url=PUBLIC_WEBHOOK_URL)).webhook.webhook_id
    stack.as_(w.tokens["admin_a"], "UpdateWebhook", G.UpdateWebhookRequest(webhook_id=w.webhook_a, set_enabled=True, enabled=False))
    w.event_a = stack.audit.ListEvents(A.ListEventsRequest(organization_id=org_a.id, page_size=1), timeout=T).events[0].event_id

    w.tokens["deleted_member"] = stack.login(doomed_a)
    assert stack.as_(w.tokens["deleted_member"], "WhoAmI", G.WhoAmIRequest()).principal.member_id == doomed_a.member_id
    stack.as_(w.tokens["admin_a"], "DeleteMember", G.DeleteMemberRequest(member_id=doomed_a.member_id))

    w.tokens["logged_out"] = stack.login(viewer_a)
    stack.as_(w.tokens["logged_out"], "Logout", G.LogoutRequest())
    return w


# --------------------------------------------------------------------------------------------
# 1. The authorisation matrix

CALLERS = ["admin_a", "viewer_a", "admin_b", "no_token", "unknown_token", "deleted_member", "logged_out"]
UNAUTHENTICATED_CALLERS = {"no_token", "unknown_token", "deleted_member", "logged_out"}
NO_TOKEN_NEEDED = {"Login", "AcceptInvite"}
VIEWER_MAY = {
    "WhoAmI", "GetDashboard", "ListProducts", "GetProduct", "ListEntitlements", "GetEntitlement", "ListActivations",
    "ListAuditEvents", "Logout"}
NAMES_AN_ID = {"GetProduct", "GetEntitlement", "Activate", "ResendInvite", "RevokeInvite", "UpdateMember", "DeleteMember",
               "UpdateWebhook", "DeleteWebhook", "ListWebhookDeliveries", "RedeliverWebhookEvent"}
PUBLIC_WEBHOOK_URL = "https://203.0.113.10/hooks/portal"  # TEST-NET-3: public, and never answers


def expected_code(rpc: str, caller: str) -> grpc.StatusCode:
    """The role table and tenancy rules: what `caller` gets from `rpc` (ids are organization A's)."""
    if rpc in NO_TOKEN_NEEDED:
        return OK
    if caller in UNAUTHENTICATED_CALLERS:
        return UNAUTHENTICATED
    if caller == "viewer_a" and rpc not in VIEWER_MAY:
        return PERMISSION_DENIED
    if caller == "admin_b" and rpc in NAMES_AN_ID:
        return NOT_FOUND
    return OK


@dataclass
class Cell:
    """One call of the matrix: the world, who calls, the request and the metadata sent."""

    w: World
    rpc: str
    caller: str
    metadata: list
    request: object = None
    scratch: dict = field(default_factory=dict)

    @property
    def account(self) -> Account | None:
        """The account of a signed-in caller (admin_a, viewer_a, admin_b); None for the others."""
        return self.w.account(self.caller)

    @property
    def stack(self) -> Stack:
        return self.w.stack


@dataclass
class Scenario:
    """How to call one RPC in the matrix.

    `build` makes a request valid for organization A (fresh resources where a call consumes them);
    `check` verifies an OK response; `state` reads what the call would change, which a refused call
    must leave as it was.
    """

    build: Callable[[Cell], object]
    check: Callable[[Cell, object], None]
    state: Callable[[Cell], object] | None = None


def identity_invites(stack: Stack, org_id: str, **filters) -> list:
    """The organization's pending invites as identity lists them (filters as ListInvitesRequest)."""
    return list(stack.identity.ListInvites(I.ListInvitesRequest(organization_id=org_id, page_size=500, **filters), timeout=T).invites)


def identity_member(stack: Stack, org_id: str, member_id: str):
    """The member as identity stores it, or None when it does not exist."""
    code, result = outcome(lambda: stack.identity.GetMember(
        I.GetMemberRequest(organization_id=org_id, member_id=member_id), timeout=T).member)
    assert code in (OK, NOT_FOUND), f"GetMember: {code.name}"
    return result if code == OK else None


def assert_works(stack: Stack, token: str, account_member_id: str) -> None:
    """The token is accepted by the gateway and stands for the given member."""
    assert stack.as_(token, "WhoAmI", G.WhoAmIRequest()).principal.member_id == account_member_id


def build_accept_invite(cell: Cell):
    """A fresh invite to organization A and its mailed secret."""
    email = f"accepted.{unique()}@{cell.w.org_a.domain}"
    before = cell.stack.spool()
    cell.stack.invite(cell.w.org_a, email)
    cell.scratch["email"] = email
    return G.AcceptInviteRequest(
        invite_secret=cell.stack.secret_for(email, before), first_name="Ana", last_name="Accepted", password=PASSWORD)


def check_accept_invite(cell: Cell, response) -> None:
    """The new member is organization A's Viewer, and the returned token works."""
    member = response.member
    assert (member.email, member.organization_id, member.role, member.display_name) == (
        cell.scratch["email"], cell.w.org_a.id, I.ROLE_VIEWER, "Ana Accepted")
    assert response.expires_at.seconds > time.time()
    assert_works(cell.stack, response.session_token, member.member_id)


def check_login(cell: Cell, response) -> None:
    """The session is organization A's Admin's, and the token works."""
    admin = cell.w.org_a.admin
    assert (response.principal.member_id, response.principal.organization_id, response.principal.role) == (
        admin.member_id, cell.w.org_a.id, I.ROLE_ADMIN)
    assert_works(cell.stack, response.session_token, admin.member_id)


def check_logout(cell: Cell, response) -> None:
    """The logged-out token is refused at once."""
    refused(lambda: cell.stack.call("WhoAmI", G.WhoAmIRequest(), cell.metadata), UNAUTHENTICATED)


def check_whoami(cell: Cell, response) -> None:
    """The principal is the caller, with their current role, and their one organization is current."""
    account = cell.account
    principal = response.principal
    assert (principal.member_id, principal.organization_id, principal.display_name, principal.email) == (
        account.member_id, account.organization_id, account.display_name, account.email)
    assert principal.role == account.member.role
    assert response.expires_at.seconds > time.time()
    assert [(o.organization_id, o.role, o.current) for o in response.organizations] == [
        (account.organization_id, account.member.role, True)]


def check_dashboard(cell: Cell, response) -> None:
    """Totals agree with the backend; member count and quick actions follow the role."""
    account = cell.account
    summary = cell.stack.entitlements.GetSummary(E.GetSummaryRequest(organization_id=account.organization_id), timeout=T)
    assert response.available_licenses == summary.available_licenses > 0
    assert response.activated_licenses == summary.activated_licenses
    assert response.unactivated_licenses == response.available_licenses - response.activated_licenses
    if account.member.role == I.ROLE_ADMIN:
        assert response.WhichOneof("optional_total_members") == "total_members"
        counted = cell.stack.identity.CountMembers(I.CountMembersRequest(organization_id=account.organization_id), timeout=T)
        assert response.total_members == counted.total_members
        assert list(response.quick_actions) == [G.QUICK_ACTION_INVITE_MEMBER]
    else:
        assert response.WhichOneof("optional_total_members") is None
        assert list(response.quick_actions) == []
    assert all(a.organization_id == account.organization_id for a in response.recent_activations)
    assert all(e.organization_id == account.organization_id for e in response.recent_events)


def own_and_foreign(cell: Cell, a_value: str, b_value: str) -> tuple[str, str]:
    """(the caller's organization's value, the other organization's value)."""
    return (b_value, a_value) if cell.caller == "admin_b" else (a_value, b_value)


def check_list_products(cell: Cell, response) -> None:
    """The caller's organization's products, and not the other's."""
    own, foreign = own_and_foreign(cell, cell.w.product_a, cell.w.product_b)
    ids = {p.product.product_id for p in response.products}
    assert own in ids and foreign not in ids, ids
    assert response.total_size == len(response.products)


def check_get_product(cell: Cell, response) -> None:
    """Organization A's product with its entitlement."""
    assert response.product.product.product_id == cell.w.product_a
    assert response.product.product.name == cell.w.product_a_name
    assert cell.w.entitlement_a in {e.entitlement_id for e in response.entitlements}


def check_list_entitlements(cell: Cell, response) -> None:
    """The caller's organization's entitlements, and not the other's."""
    own, foreign = own_and_foreign(cell, cell.w.entitlement_a, cell.w.entitlement_b)
    ids = {e.entitlement_id for e in response.entitlements}
    assert own in ids and foreign not in ids, ids
    assert all(e.organization_id == cell.account.organization_id for e in response.entitlements)


def check_get_entitlement(cell: Cell, response) -> None:
    """Organization A's entitlement with its one line."""
    entitlement = response.entitlement
    assert (entitlement.entitlement_id, entitlement.organization_id, entitlement.po_number) == (
        cell.w.entitlement_a, cell.w.org_a.id, "PO-A")
    assert [line.product_id for line in entitlement.lines] == [cell.w.product_a]


def build_activate(cell: Cell):
    """One license of organization A's large entitlement, with a fresh idempotency key."""
    cell.scratch["project"] = unique("Matrix Project ")
    return G.ActivateRequest(
        entitlement_id=cell.w.entitlement_a, product_id=cell.w.product_a, quantity=1, project_name=cell.scratch["project"],
        project_manager="Grace Hopper", idempotency_key=uuid.uuid4().hex)


def check_activate(cell: Cell, response) -> None:
    """The activation is organization A's and names the acting Admin."""
    activation = response.activation
    admin = cell.w.org_a.admin
    assert (activation.organization_id, activation.entitlement_id, activation.product_id, activation.quantity) == (
        cell.w.org_a.id, cell.w.entitlement_a, cell.w.product_a, 1)
    assert (activation.project_name, activation.activated_by, activation.activated_by_member_id) == (
        cell.scratch["project"], admin.display_name, admin.member_id)


def activated_on_a(cell: Cell) -> int:
    """Licenses activated on organization A's large entitlement."""
    return activated_licenses(cell.w)


def check_list_activations(cell: Cell, response) -> None:
    """Only the caller's organization's activations."""
    _, foreign = own_and_foreign(cell, cell.w.entitlement_a, cell.w.entitlement_b)
    assert all(a.organization_id == cell.account.organization_id for a in response.activations)
    assert foreign not in {a.entitlement_id for a in response.activations}
    assert response.total_size >= len(response.activations)


def check_export_activations(cell: Cell, text: str) -> None:
    """The header row, and only the caller's organization's entitlements in the rows."""
    rows = parse_csv(text)
    assert ",".join(rows[0]) == ACTIVATIONS_CSV_HEADER
    _, foreign = own_and_foreign(cell, cell.w.entitlement_a, cell.w.entitlement_b)
    assert all(row[6] != foreign for row in rows[1:])
    if cell.caller == "admin_a":
        assert len(rows) > 1 and all(row[6] == cell.w.entitlement_a for row in rows[1:])


def check_list_audit_events(cell: Cell, response) -> None:
    """Only the caller's organization's events."""
    assert response.events, "every organization has at least its first Admin's invite event"
    assert all(e.organization_id == cell.account.organization_id for e in response.events)


def check_export_audit_events(cell: Cell, text: str) -> None:
    """The header row, and nothing of the other organization's people."""
    rows = parse_csv(text)
    assert ",".join(rows[0]) == AUDIT_CSV_HEADER
    assert len(rows) > 1
    other_admin = cell.w.org_a.admin if cell.caller == "admin_b" else cell.w.org_b.admin
    assert other_admin.email not in text and other_admin.display_name not in text


def check_watch_audit_events(cell: Cell, messages: list) -> None:
    """The caller's organization's events from its first, in order, then a heartbeat at the last cursor."""
    events = [m.event for m in messages if not m.heartbeat]
    assert events and all(e.organization_id == cell.account.organization_id for e in events)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [m.cursor for m in messages] == [str(e.sequence) for e in events] + [str(len(events))]


def check_list_members(cell: Cell, response) -> None:
    """Only the caller's organization's members, the caller among them."""
    assert all(m.organization_id == cell.account.organization_id for m in response.members)
    ids = {m.member_id for m in response.members}
    assert cell.account.member_id in ids
    assert (cell.w.bystander_a.member_id in ids) == (cell.caller == "admin_a")


def check_list_invites(cell: Cell, response) -> None:
    """Only the caller's organization's invites."""
    assert all(i.organization_id == cell.account.organization_id for i in response.invites)
    assert (cell.w.invite_a.invite_id in {i.invite_id for i in response.invites}) == (cell.caller == "admin_a")


def build_invite_member(cell: Cell):
    """An invite of a fresh email as Viewer."""
    cell.scratch["email"] = f"invited.{unique()}@example.com"
    return G.InviteMemberRequest(email=cell.scratch["email"], role=I.ROLE_VIEWER)


def check_invite_member(cell: Cell, response) -> None:
    """The invite is the caller's organization's and names the caller as inviter."""
    invite = response.invite
    account = cell.account
    assert (invite.email, invite.organization_id, invite.role) == (cell.scratch["email"], account.organization_id, I.ROLE_VIEWER)
    assert (invite.invited_by, invite.invited_by_member_id) == (account.display_name, account.member_id)


def invites_for_email(cell: Cell) -> list:
    """Invite ids for the request's email in organizations A and B."""
    email = cell.request.email
    return [i.invite_id for org in (cell.w.org_a, cell.w.org_b) for i in identity_invites(cell.stack, org.id, search_text=email)]


def build_resend_invite(cell: Cell):
    """Organization A's long-lived pending invite."""
    return G.ResendInviteRequest(invite_id=cell.w.invite_a.invite_id)


def check_resend_invite(cell: Cell, response) -> None:
    """The same invite with a renewed expiry."""
    assert (response.invite.invite_id, response.invite.organization_id) == (cell.w.invite_a.invite_id, cell.w.org_a.id)
    assert response.invite.expires_at.seconds > time.time() + 6 * 24 * 3600


def invite_a_state(cell: Cell):
    """The pending invite's id, added_on and expiry as identity stores them."""
    return [(i.invite_id, i.added_on.seconds, i.added_on.nanos, i.expires_at.seconds)
            for i in identity_invites(cell.stack, cell.w.org_a.id) if i.invite_id == cell.request.invite_id]


def build_revoke_invite(cell: Cell):
    """A fresh pending invite of organization A."""
    invite = cell.stack.invite(cell.w.org_a, f"revocable.{unique()}@{cell.w.org_a.domain}")
    return G.RevokeInviteRequest(invite_id=invite.invite_id)


def check_revoke_invite(cell: Cell, response) -> None:
    """The invite is gone."""
    assert invite_a_state(cell) == []


def build_update_member(cell: Cell):
    """A new first name for organization A's bystander member."""
    cell.scratch["first_name"] = unique("Bert")
    return G.UpdateMemberRequest(member_id=cell.w.bystander_a.member_id, first_name=cell.scratch["first_name"])


def check_update_member(cell: Cell, response) -> None:
    """The new first name is returned and stored; nothing else changed."""
    member = response.member
    assert (member.member_id, member.first_name, member.last_name, member.role) == (
        cell.w.bystander_a.member_id, cell.scratch["first_name"], "Bystander", I.ROLE_VIEWER)
    assert identity_member(cell.stack, cell.w.org_a.id, member.member_id).first_name == cell.scratch["first_name"]


def member_state(cell: Cell):
    """The target member's names and role, or None when deleted."""
    member = identity_member(cell.stack, cell.w.org_a.id, cell.request.member_id)
    return None if member is None else (member.first_name, member.last_name, member.role)


def build_delete_member(cell: Cell):
    """A throwaway member for organization A's Admin; the bystander for everyone else."""
    if cell.caller == "admin_a":
        target = cell.stack.add_member(cell.w.org_a, "Tom", "Throwaway")
    else:
        target = cell.w.bystander_a
    return G.DeleteMemberRequest(member_id=target.member_id)


def check_delete_member(cell: Cell, response) -> None:
    """The member is gone, and deleting again is NOT_FOUND."""
    assert member_state(cell) is None
    refused(lambda: cell.stack.call("DeleteMember", cell.request, cell.metadata), NOT_FOUND)


def audit_webhooks(cell: Cell, organization_id: str | None = None) -> dict:
    """An organization's webhooks (A's by default) as audit lists them, by id: (url, description, enabled)."""
    listed = cell.stack.audit.ListWebhooks(A.ListWebhooksRequest(organization_id=organization_id or cell.w.org_a.id), timeout=T)
    return {w.webhook_id: (w.url, w.description, w.enabled) for w in listed.webhooks}


def check_create_webhook(cell: Cell, response) -> None:
    """The new webhook is the caller's organization's, with a secret shown once."""
    assert response.webhook.organization_id == cell.account.organization_id
    assert response.secret.startswith("whsec_") and response.webhook.url == cell.request.url
    assert response.webhook.webhook_id in audit_webhooks(cell, cell.account.organization_id)


def check_list_webhooks(cell: Cell, response) -> None:
    """Only the caller's organization's webhooks, never a secret."""
    assert all(w.organization_id == cell.account.organization_id for w in response.webhooks)
    assert (cell.w.webhook_a in {w.webhook_id for w in response.webhooks}) == (cell.caller == "admin_a")


def check_update_webhook(cell: Cell, response) -> None:
    assert response.webhook.description == cell.request.description and not response.secret


def build_delete_webhook(cell: Cell):
    """A throwaway webhook for organization A's Admin; A's paused one for everyone else."""
    if cell.caller == "admin_a":
        return G.DeleteWebhookRequest(webhook_id=cell.stack.as_(
            cell.w.tokens["admin_a"], "CreateWebhook", G.CreateWebhookRequest(url=PUBLIC_WEBHOOK_URL)).webhook.webhook_id)
    return G.DeleteWebhookRequest(webhook_id=cell.w.webhook_a)


def check_delete_webhook(cell: Cell, response) -> None:
    assert cell.request.webhook_id not in audit_webhooks(cell)
    refused(lambda: cell.stack.call("DeleteWebhook", cell.request, cell.metadata), NOT_FOUND)


def webhook_deliveries(cell: Cell) -> list:
    """A's paused webhook's deliveries as audit lists them."""
    return [d.delivery_id for d in cell.stack.audit.ListDeliveries(A.ListDeliveriesRequest(
        organization_id=cell.w.org_a.id, webhook_id=cell.w.webhook_a, page_size=500), timeout=T).deliveries]


def check_redeliver(cell: Cell, response) -> None:
    assert response.delivery.event_id == cell.w.event_a and response.delivery.delivery_id in webhook_deliveries(cell)


SCENARIOS: dict[str, Scenario] = {
    "Login": Scenario(
        lambda c: G.LoginRequest(organization_id=c.w.org_a.id, email=c.w.org_a.admin.email.upper(), password=PASSWORD), check_login),
    "AcceptInvite": Scenario(build_accept_invite, check_accept_invite),
    "Logout": Scenario(lambda c: G.LogoutRequest(), check_logout),
    "WhoAmI": Scenario(lambda c: G.WhoAmIRequest(), check_whoami),
    "GetDashboard": Scenario(lambda c: G.GetDashboardRequest(), check_dashboard),
    "ListProducts": Scenario(lambda c: G.ListProductsRequest(page_size=500), check_list_products),
    "GetProduct": Scenario(lambda c: G.GetProductRequest(product_id=c.w.product_a), check_get_product),
    "ListEntitlements": Scenario(lambda c: G.ListEntitlementsRequest(page_size=500), check_list_entitlements),
    "GetEntitlement": Scenario(lambda c: G.GetEntitlementRequest(entitlement_id=c.w.entitlement_a), check_get_entitlement),
    "Activate": Scenario(build_activate, check_activate, activated_on_a),
    "ListActivations": Scenario(lambda c: G.ListActivationsRequest(page_size=500), check_list_activations),
    "ExportActivationsCsv": Scenario(lambda c: G.ExportActivationsCsvRequest(), check_export_activations),
    "ListAuditEvents": Scenario(lambda c: G.ListAuditEventsRequest(page_size=500), check_list_audit_events),
    "ExportAuditEventsCsv": Scenario(lambda c: G.ExportAuditEventsCsvRequest(), check_export_audit_events),
    "WatchAuditEvents": Scenario(
        lambda c: G.WatchAuditEventsRequest(cursor="0", heartbeat_seconds=1), check_watch_audit_events),
    "ListMembers": Scenario(lambda c: G.ListMembersRequest(page_size=500), check_list_members),
    "ListInvites": Scenario(lambda c: G.ListInvitesRequest(page_size=500), check_list_invites),
    "InviteMember": Scenario(build_invite_member, check_invite_member, invites_for_email),
    "ResendInvite": Scenario(build_resend_invite, check_resend_invite, invite_a_state),
    "RevokeInvite": Scenario(build_revoke_invite, check_revoke_invite, invite_a_state),
    "UpdateMember": Scenario(build_update_member, check_update_member, member_state),
    "DeleteMember": Scenario(build_delete_member, check_delete_member, member_state),
    "CreateWebhook": Scenario(
        lambda c: G.CreateWebhookRequest(url=f"{PUBLIC_WEBHOOK_URL}/{unique()}"), check_create_webhook, audit_webhooks),
    "ListWebhooks": Scenario(lambda c: G.ListWebhooksRequest(), check_list_webhooks),
    "UpdateWebhook": Scenario(
        lambda c: G.UpdateWebhookRequest(webhook_id=c.w.webhook_a, set_description=True, description=f"Changed {unique()}"),
        check_update_webhook, audit_webhooks),
    "DeleteWebhook": Scenario(build_delete_webhook, check_delete_webhook, audit_webhooks),
    "ListWebhookDeliveries": Scenario(
        lambda c: G.ListWebhookDeliveriesRequest(webhook_id=c.w.webhook_a),
        lambda c, r: None if all(d.webhook_id == c.w.webhook_a for d in r.deliveries) else pytest.fail("another webhook's deliveries")),
    "RedeliverWebhookEvent": Scenario(
        lambda c: G.RedeliverWebhookEventRequest(webhook_id=c.w.webhook_a, event_id=c.w.event_a), check_redeliver,
        webhook_deliveries),
}


def test_the_matrix_covers_every_rpc_of_the_proto():
    """The matrix below has a scenario for each of PortalService's RPCs, and no other."""
    assert len(RPCS) == 28
    assert sorted(SCENARIOS) == sorted(RPCS)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rpc", RPCS)
def test_authorisation_matrix(world, rpc, caller):
    """Each RPC × caller gets the status the role table and tenancy rules give; an OK response is
    the caller's own data, and a refused call changes nothing."""
    scenario = SCENARIOS[rpc]
    cell = Cell(world, rpc, caller, world.metadata(caller, fresh=(rpc == "Logout")))
    cell.request = scenario.build(cell)
    before = scenario.state(cell) if scenario.state else None
    code, result = outcome(lambda: world.stack.call(rpc, cell.request, cell.metadata))
    expected = expected_code(rpc, caller)
    detail = result.details() if code != OK else ""
    assert code == expected, f"{rpc} as {caller}: expected {expected.name}, got {code.name} {detail!r}"
    if code == OK:
        scenario.check(cell, result)
    elif scenario.state:
        assert scenario.state(cell) == before, f"{rpc} as {caller} was refused with {code.name} but changed state"


# --------------------------------------------------------------------------------------------
# 2. Sign-in and invites without a token


def test_sign_in_whoami_logout(world):
    """Login (email case-insensitive) returns a working token; WhoAmI reports the caller; after Logout
    the token is refused at once; wrong passwords, unknown accounts and malformed headers are
    UNAUTHENTICATED."""
    stack, viewer = world.stack, world.viewer_a
    login = stack.portal.Login(
        G.LoginRequest(organization_id=viewer.organization_id, email=viewer.email.upper(), password=PASSWORD), timeout=T)
    assert login.session_token
    assert login.expires_at.seconds > time.time() + 3600
    assert (login.principal.member_id, login.principal.role, login.principal.display_name) == (
        viewer.member_id, I.ROLE_VIEWER, "Vera Viewer")
    who = stack.as_(login.session_token, "WhoAmI", G.WhoAmIRequest())
    assert who.principal == login.principal
    assert who.expires_at.seconds == login.expires_at.seconds

    stack.as_(login.session_token, "Logout", G.LogoutRequest())
    refused(lambda: stack.call("WhoAmI", G.WhoAmIRequest(), bearer(login.session_token)), UNAUTHENTICATED)
    refused(lambda: stack.call("Logout", G.LogoutRequest(), bearer(login.session_token)), UNAUTHENTICATED)
    assert_works(stack, world.tokens["viewer_a"], viewer.member_id)

    refused(lambda: stack.portal.Login(
        G.LoginRequest(organization_id=viewer.organization_id, email=viewer.email, password=PASSWORD + "!"), timeout=T),
        UNAUTHENTICATED)
    refused(lambda: stack.portal.Login(
        G.LoginRequest(organization_id=world.org_b.id, email=viewer.email, password=PASSWORD), timeout=T), UNAUTHENTICATED)
    token = world.tokens["viewer_a"]
    for header in (f"Basic {token}", "Bearer", token, f"Token {token}", f"Bearer {token}x"):
        refused(lambda: stack.call("WhoAmI", G.WhoAmIRequest(), [("authorization", header)]), UNAUTHENTICATED)


def test_sign_in_without_an_organization(world):
    """Email and password alone: a member of one organization is signed in at once; a member of two
    gets a choice token and both organizations, chooses one with a second Login, and WhoAmI lists
    both with the chosen one current; the choice token works once; a wrong password and an unknown
    email get the same answer."""
    stack = world.stack
    single = stack.add_member(world.org_b, "Solo", "Single")
    signed_in = stack.portal.Login(G.LoginRequest(email=single.email.upper(), password=PASSWORD), timeout=T)
    assert signed_in.principal.member_id == single.member_id and not signed_in.choice_token
    who = stack.as_(signed_in.session_token, "WhoAmI", G.WhoAmIRequest())
    assert [(o.organization_id, o.current) for o in who.organizations] == [(world.org_b.id, True)]

    (org_c,) = stack.create_orgs(("Cara", "Choice"))
    in_a = stack.add_member(world.org_a, "Mona", "Multi")
    before = stack.spool()
    stack.invite(org_c, in_a.email, I.ROLE_ADMIN)
    in_c = stack.accept(stack.secret_for(in_a.email, before), "Mona", "Multi")
    memberships = stack.identity.ListMemberships(
        I.ListMembershipsRequest(organization_id=world.org_a.id, member_id=in_a.member_id), timeout=T).memberships
    expected = [(m.organization_id, m.organization_name) for m in memberships]
    assert {organization for organization, _ in expected} == {world.org_a.id, org_c.id}

    offer = stack.portal.Login(G.LoginRequest(email=in_a.email, password=PASSWORD), timeout=T)
    assert offer.session_token == "" and not offer.HasField("principal")
    assert offer.choice_token and offer.choice_expires_at.seconds > time.time() + 240
    assert [(c.organization_id, c.name) for c in offer.organization_choices] == expected
    chosen = stack.portal.Login(G.LoginRequest(choice_token=offer.choice_token, organization_id=org_c.id), timeout=T)
    assert (chosen.principal.member_id, chosen.principal.organization_id, chosen.principal.role) == (
        in_c.member_id, org_c.id, I.ROLE_ADMIN)
    who = stack.as_(chosen.session_token, "WhoAmI", G.WhoAmIRequest())
    assert who.principal.organization_id == org_c.id
    assert [(o.organization_id, o.organization_name) for o in who.organizations] == expected
    assert {o.organization_id: (o.role, o.current) for o in who.organizations} == {
        world.org_a.id: (I.ROLE_VIEWER, False), org_c.id: (I.ROLE_ADMIN, True)}
    # Admin of C now: the members screen is open to this session.
    assert stack.as_(chosen.session_token, "ListMembers", G.ListMembersRequest()).total_size == 2

    message = refused(lambda: stack.portal.Login(
        G.LoginRequest(choice_token=offer.choice_token, organization_id=world.org_a.id), timeout=T), UNAUTHENTICATED)
    assert message.startswith("choice_token:"), message
    # Switching: Login to the other organization, with the password.
    switched = stack.portal.Login(G.LoginRequest(organization_id=world.org_a.id, email=in_a.email, password=PASSWORD), timeout=T)
    assert switched.principal.member_id == in_a.member_id and switched.principal.role == I.ROLE_VIEWER

    wrong = refused(lambda: stack.portal.Login(G.LoginRequest(email=in_a.email, password=PASSWORD + "!"), timeout=T), UNAUTHENTICATED)
    unknown = refused(lambda: stack.portal.Login(
        G.LoginRequest(email=f"nobody.{unique()}@example.com", password=PASSWORD), timeout=T), UNAUTHENTICATED)
    assert wrong == unknown == "email or password is incorrect"


def test_accept_invite_through_the_gateway(world):
    """AcceptInvite with the mailed secret makes the member and logs them in; a short password, the
    used secret, a resent-over secret and an unknown secret are refused."""
    stack, org = world.stack, world.org_a
    email = f"newcomer.{unique()}@{org.domain}"
    before = stack.spool()
    invite = stack.invite(org, email, I.ROLE_ADMIN)
    first_secret = stack.secret_for(email, before)
    before = stack.spool()
    stack.as_(world.tokens["admin_a"], "ResendInvite", G.ResendInviteRequest(invite_id=invite.invite_id))
    secret = stack.secret_for(email, before)
    assert secret != first_secret

    def accept(value):
        """Accepts the invite through the gateway with `value` as the secret."""
        return stack.portal.AcceptInvite(
            G.AcceptInviteRequest(invite_secret=value, first_name="Nina", last_name="Newcomer", password=PASSWORD), timeout=T)

    refused(lambda: accept(first_secret), UNAUTHENTICATED)
    refused(lambda: accept("not-a-real-secret"), UNAUTHENTICATED)
    message = refused(lambda: stack.portal.AcceptInvite(
        G.AcceptInviteRequest(invite_secret=secret, first_name="Nina", last_name="Newcomer", password="short"), timeout=T),
        INVALID_ARGUMENT)
    assert "password" in message
    accepted = accept(secret)
    assert (accepted.member.email, accepted.member.role, accepted.member.display_name) == (email, I.ROLE_ADMIN, "Nina Newcomer")
    who = stack.as_(accepted.session_token, "WhoAmI", G.WhoAmIRequest()).principal
    assert (who.member_id, who.organization_id, who.role) == (accepted.member.member_id, org.id, I.ROLE_ADMIN)
    refused(lambda: accept(secret), FAILED_PRECONDITION)
    stack.as_(world.tokens["admin_a"], "DeleteMember", G.DeleteMemberRequest(member_id=accepted.member.member_id))


# --------------------------------------------------------------------------------------------
# 3. Dashboard


@pytest.fixture(scope="module")
def dashboard_org(world):
    """An organization of its own for the dashboard: an Admin, a Viewer and two entitlements."""
    stack = world.stack
    (org,) = stack.create_orgs(("Dana", "Dash"))
    (viewer,) = stack.add_members(org, ("Vic", "Viewer", I.ROLE_VIEWER))
    product_one, product_two = stack.upsert_product(f"Dash Amp {unique()}"), stack.upsert_product(f"Dash Mixer {unique()}")
    first = stack.transfer(org, [(product_one, 40), (product_two, 25)])
    second = stack.transfer(org, [(product_one, 20)])
    return org, viewer, [(first, product_one), (first, product_two), (second, product_one)]


def test_dashboard_agrees_with_the_backends_after_activations(world, dashboard_org):
    """After seven activations through the gateway the dashboard's totals equal the entitlements
    backend's summary, its recent activations and events are the five newest, the Admin sees the
    member count and the invite quick action, and the Viewer sees neither."""
    stack = world.stack
    org, viewer, lines = dashboard_org
    admin_token, viewer_token = stack.login(org.admin), stack.login(viewer)

    empty = stack.as_(admin_token, "GetDashboard", G.GetDashboardRequest())
    assert (empty.available_licenses, empty.activated_licenses, empty.unactivated_licenses) == (85, 0, 85)
    assert list(empty.recent_activations) == []

    quantities = [3, 1, 4, 1, 5, 9, 2]
    activations = []
    for index, quantity in enumerate(quantities):
        entitlement_id, product_id = lines[index % len(lines)]
        activations.append(stack.as_(admin_token, "Activate", G.ActivateRequest(
            entitlement_id=entitlement_id, product_id=product_id, quantity=quantity, project_name=f"Dash {index}",
            project_manager="Grace Hopper", idempotency_key=uuid.uuid4().hex)).activation)

    summary = stack.entitlements.GetSummary(E.GetSummaryRequest(organization_id=org.id, recent_activations_limit=5), timeout=T)
    expected_totals = (85, sum(quantities), 85 - sum(quantities))
    assert (summary.available_licenses, summary.activated_licenses, summary.unactivated_licenses) == expected_totals

    # Every activation's audit event has arrived before comparing.
    delivered = support.wait_until(
        lambda: stack.audit.ListEvents(A.ListEventsRequest(
            organization_id=org.id, page_size=1, event_types=[A.EVENT_TYPE_ACTIVATIONS]), timeout=T).total_size == len(quantities),
        timeout=AUDIT_DELIVERY_TIMEOUT, interval=0.1)
    assert delivered, f"the {len(quantities)} activation events did not reach audit within {AUDIT_DELIVERY_TIMEOUT:.0f} s"
    newest_events = stack.audit.RecentEvents(A.RecentEventsRequest(organization_id=org.id, limit=5), timeout=T).events

    counted = stack.identity.CountMembers(I.CountMembersRequest(organization_id=org.id), timeout=T).total_members
    assert counted == 2
    for token, is_admin in ((admin_token, True), (viewer_token, False)):
        board = stack.as_(token, "GetDashboard", G.GetDashboardRequest())
        assert (board.available_licenses, board.activated_licenses, board.unactivated_licenses) == expected_totals
        assert [a.activation_id for a in board.recent_activations] == [a.activation_id for a in summary.recent_activations]
        assert {a.activation_id for a in board.recent_activations} == {a.activation_id for a in activations[-5:]}
        assert [a.quantity for a in board.recent_activations] == quantities[::-1][:5]
        assert all(a.activated_by == "Dana Dash" for a in board.recent_activations)
        assert [e.event_id for e in board.recent_events] == [e.event_id for e in newest_events]
        assert len(board.recent_events) == 5
        assert all(e.event_type == A.EVENT_TYPE_ACTIVATIONS and e.user == "Dana Dash" for e in board.recent_events)
        if is_admin:
            assert board.HasField("total_members") and board.total_members == counted
            assert list(board.quick_actions) == [G.QUICK_ACTION_INVITE_MEMBER]
        else:
            assert not board.HasField("total_members")
            assert board.WhichOneof("optional_total_members") is None
            assert list(board.quick_actions) == []


# --------------------------------------------------------------------------------------------
# 4. One test per portal module


def test_licensing_products_entitlements_and_activation(world):
    """Products and entitlements with their counts, Activate moving them, an idempotent retry, and
    over-activation refused with FAILED_PRECONDITION naming the numbers."""
    stack, org = world.stack, world.org_a
    admin_token, viewer_token = world.tokens["admin_a"], world.tokens["viewer_a"]
    name = f"Licensing Hub {unique()}"
    product = stack.upsert_product(name)
    entitlement = stack.transfer(org, [(product, 5)], po="PO-LIC")

    listed = stack.as_(viewer_token, "ListProducts", G.ListProductsRequest(search_text=name)).products
    assert [(p.product.product_id, p.available_licenses, p.activated_licenses, p.unactivated_licenses) for p in listed] == [
        (product, 5, 0, 5)]
    found = stack.as_(viewer_token, "ListEntitlements", G.ListEntitlementsRequest(
        search_field=E.ENTITLEMENT_SEARCH_FIELD_ENTITLEMENT_ID, search_text=entitlement))
    assert [e.entitlement_id for e in found.entitlements] == [entitlement] and found.total_size == 1
    by_po = stack.as_(viewer_token, "ListEntitlements", G.ListEntitlementsRequest(
        search_field=E.ENTITLEMENT_SEARCH_FIELD_PO_NUMBER, search_text="PO-LIC"))
    assert entitlement in {e.entitlement_id for e in by_po.entitlements}

    request = G.ActivateRequest(entitlement_id=entitlement, product_id=product, quantity=3, project_name="Licensing Test",
                                project_manager="Grace Hopper", serial_number="SN-1", idempotency_key=uuid.uuid4().hex)
    first = stack.as_(admin_token, "Activate", request).activation
    assert (first.quantity, first.product_name, first.serial_number, first.activated_by) == (3, name, "SN-1", "Alice Anders")
    again = stack.as_(admin_token, "Activate", request).activation
    assert again.activation_id == first.activation_id

    detail = stack.as_(viewer_token, "GetProduct", G.GetProductRequest(product_id=product))
    assert (detail.product.available_licenses, detail.product.activated_licenses, detail.product.unactivated_licenses) == (5, 3, 2)
    assert [(e.entitlement_id, e.available_licenses, e.activated_licenses, e.unactivated_licenses) for e in detail.entitlements] == [
        (entitlement, 5, 3, 2)]
    line = stack.as_(viewer_token, "GetEntitlement", G.GetEntitlementRequest(entitlement_id=entitlement)).entitlement.lines[0]
    assert (line.product_id, line.available_licenses, line.activated_licenses, line.unactivated_licenses) == (product, 5, 3, 2)

    message = refused(lambda: stack.call("Activate", G.ActivateRequest(
        entitlement_id=entitlement, product_id=product, quantity=3, project_name="Too Many", project_manager="Grace Hopper",
        idempotency_key=uuid.uuid4().hex), bearer(admin_token)), FAILED_PRECONDITION)
    numbers = re.findall(r"\d+", message.replace(entitlement, ""))
    assert {"3", "2", "5"} <= set(numbers), f"the refusal should name requested, unactivated and available: {message!r}"
    refused(lambda: stack.call("Activate", G.ActivateRequest(
        entitlement_id=entitlement, product_id=world.product_a, quantity=1, project_name="Wrong Line", project_manager="Grace Hopper",
        idempotency_key=uuid.uuid4().hex), bearer(admin_token)), NOT_FOUND)
    final = stack.as_(viewer_token, "GetEntitlement", G.GetEntitlementRequest(entitlement_id=entitlement)).entitlement
    assert (final.total_activated_licenses, final.total_unactivated_licenses) == (3, 2)


def test_activations_log_filters_and_csv(world):
    """ListActivations filters by product, text and date range, sorts and pages; the CSV export streams
    the same rows with every column, in the requested time zone; the backend's refusals pass through."""
    stack, org = world.stack, world.org_a
    admin_token, viewer_token = world.tokens["admin_a"], world.tokens["viewer_a"]
    tag = unique("Log")
    other_name = f"Log Relay {unique()}"
    other = stack.upsert_product(other_name)
    other_entitlement = stack.transfer(org, [(other, 10)])
    started = now_timestamp(-2)
    plan = [(world.entitlement_a, world.product_a, 2, "SN-A"), (world.entitlement_a, world.product_a, 1, ""),
            (other_entitlement, other, 4, "SN-C")]
    made = []
    for index, (entitlement_id, product_id, quantity, serial) in enumerate(plan):
        made.append(stack.as_(admin_token, "Activate", G.ActivateRequest(
            entitlement_id=entitlement_id, product_id=product_id, quantity=quantity, project_name=f"{tag} Project {index}",
            project_manager="Linus Manager", serial_number=serial, idempotency_key=uuid.uuid4().hex)).activation)

    everything = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(search_text=tag, order_by="project_name asc"))
    assert everything.total_size == 3
    assert [a.activation_id for a in everything.activations] == [a.activation_id for a in made]
    assert all(a.activated_by == "Alice Anders" and a.project_manager == "Linus Manager" for a in everything.activations)
    descending = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(search_text=tag, order_by="quantity desc"))
    assert [a.quantity for a in descending.activations] == [4, 2, 1]
    only_other = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(search_text=tag, product_ids=[other]))
    assert [a.activation_id for a in only_other.activations] == [made[2].activation_id]
    by_serial = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(search_text="SN-C"))
    assert made[2].activation_id in {a.activation_id for a in by_serial.activations}
    in_window = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(
        search_text=tag, activation_date_start=started, activation_date_end=now_timestamp(60)))
    assert in_window.total_size == 3
    before_window = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(search_text=tag, activation_date_end=started))
    assert before_window.total_size == 0
    paged = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(search_text=tag, page_size=2, order_by="project_name asc"))
    assert len(paged.activations) == 2 and paged.next_page_token
    rest = stack.as_(viewer_token, "ListActivations", G.ListActivationsRequest(
        search_text=tag, page_size=2, order_by="project_name asc", page_token=paged.next_page_token))
    assert [a.activation_id for a in rest.activations] == [made[2].activation_id] and not rest.next_page_token

    text = stack.as_(admin_token, "ExportActivationsCsv", G.ExportActivationsCsvRequest(search_text=tag, order_by="project_name asc"))
    rows = parse_csv(text)
    assert ",".join(rows[0]) == ACTIVATIONS_CSV_HEADER
    assert [row[1:] for row in rows[1:]] == [
        [world.product_a_name, "2", f"{tag} Project 0", "Linus Manager", "Alice Anders", world.entitlement_a, "SN-A"],
        [world.product_a_name, "1", f"{tag} Project 1", "Linus Manager", "Alice Anders", world.entitlement_a, ""],
        [other_name, "4", f"{tag} Project 2", "Linus Manager", "Alice Anders", other_entitlement, "SN-C"],
    ]
    assert all(re.fullmatch(r"\d\d [A-Z][a-z]{2} \d{4}, \d\d:\d\d:\d\d", row[0]) for row in rows[1:])
    filtered = parse_csv(stack.as_(admin_token, "ExportActivationsCsv", G.ExportActivationsCsvRequest(search_text=tag, product_ids=[other])))
    assert [row[3] for row in filtered[1:]] == [f"{tag} Project 2"]
    kolkata = parse_csv(stack.as_(admin_token, "ExportActivationsCsv", G.ExportActivationsCsvRequest(
        search_text=tag, order_by="project_name asc", time_zone="Asia/Kolkata")))
    for utc_row, local_row in zip(rows[1:], kolkata[1:]):
        shift = csv_moment(local_row[0]) - csv_moment(utc_row[0])
        assert shift == datetime.timedelta(hours=5, minutes=30), (utc_row[0], local_row[0])
    message = refused(lambda: stack.call("ExportActivationsCsv", G.ExportActivationsCsvRequest(time_zone="Mars/Olympus"),
                                         bearer(admin_token)), INVALID_ARGUMENT)
    assert "time_zone" in message


def wait_for_events(stack: Stack, token: str, timeout: float = AUDIT_DELIVERY_TIMEOUT, count: int = 1, **filters):
    """Polls ListAuditEvents through the gateway until `count` events match the filters."""
    def matching():
        """The response once enough events match; None before."""
        response = stack.as_(token, "ListAuditEvents", G.ListAuditEventsRequest(**filters))
        return response if response.total_size >= count else None
    response = support.wait_until(matching, timeout=timeout, interval=0.1)
    assert response is not None, f"no {count} audit event(s) matching {filters} within {timeout:.0f}s"
    return response


def test_audit_log_names_the_acting_member(world):
    """An activation and an invite made through the gateway appear in the audit log naming the Admin
    who made them; type filters, the user filter and the CSV export agree."""
    stack, admin = world.stack, world.org_a.admin
    admin_token, viewer_token = world.tokens["admin_a"], world.tokens["viewer_a"]
    project = unique("Audited Project ")
    activation = stack.as_(admin_token, "Activate", G.ActivateRequest(
        entitlement_id=world.entitlement_a, product_id=world.product_a, quantity=2, project_name=project,
        project_manager="Grace Hopper", idempotency_key=uuid.uuid4().hex)).activation
    email = f"audited.{unique()}@example.com"
    invite = stack.as_(admin_token, "InviteMember", G.InviteMemberRequest(email=email, role=I.ROLE_VIEWER)).invite

    (event,) = wait_for_events(stack, viewer_token, search_text=project).events
    assert (event.event_type, event.action, event.user, event.actor_member_id) == (
        A.EVENT_TYPE_ACTIVATIONS, A.EVENT_ACTION_LICENSES_ACTIVATED, "Alice Anders", admin.member_id)
    assert (event.subject_kind, event.subject_id, event.organization_id) == (
        A.SUBJECT_KIND_ACTIVATION, activation.activation_id, world.org_a.id)
    assert event.message == f"Activated 2 licenses of {world.product_a_name} for project {project}"
    (invited,) = wait_for_events(stack, viewer_token, search_text=email).events
    assert (invited.event_type, invited.user, invited.actor_member_id, invited.subject_id) == (
        A.EVENT_TYPE_MEMBERS, "Alice Anders", admin.member_id, invite.invite_id)

    members_only = stack.as_(viewer_token, "ListAuditEvents", G.ListAuditEventsRequest(
        search_text=project, event_types=[A.EVENT_TYPE_MEMBERS]))
    assert members_only.total_size == 0
    by_actor = stack.as_(viewer_token, "ListAuditEvents", G.ListAuditEventsRequest(actor_member_id=admin.member_id, page_size=500))
    assert {event.event_id, invited.event_id} <= {e.event_id for e in by_actor.events}
    assert all(e.actor_member_id == admin.member_id for e in by_actor.events)
    system = stack.as_(viewer_token, "ListAuditEvents", G.ListAuditEventsRequest(user="system", page_size=500))
    assert system.total_size >= 1 and all(e.user == "system" for e in system.events)
    newest_first = stack.as_(viewer_token, "ListAuditEvents", G.ListAuditEventsRequest(page_size=500)).events
    times = [(e.time.seconds, e.time.nanos) for e in newest_first]
    assert times == sorted(times, reverse=True)

    rows = parse_csv(stack.as_(admin_token, "ExportAuditEventsCsv", G.ExportAuditEventsCsvRequest(search_text=project)))
    assert ",".join(rows[0]) == AUDIT_CSV_HEADER
    assert [row[1:] for row in rows[1:]] == [[event.message, "Activations", "Alice Anders"]]
    assert re.fullmatch(r"\d\d [A-Z][a-z]{2} \d{4}, \d\d:\d\d:\d\d", rows[1][0])


def test_members_invite_resend_revoke_update_delete(world):
    """Through the gateway an Admin invites (the invite is listed), resends (a new secret), revokes
    (the invite leaves the list and its secret stops working), edits a member's role and details,
    and deletes them; a duplicate invite is ALREADY_EXISTS and a bad phone INVALID_ARGUMENT."""
    stack, org = world.stack, world.org_a
    admin_token = world.tokens["admin_a"]
    email = f"Invitee.{unique()}@{org.domain}"
    before = stack.spool()
    invite = stack.as_(admin_token, "InviteMember", G.InviteMemberRequest(email=email, phone="+14155550100", role=I.ROLE_VIEWER)).invite
    first_secret = stack.secret_for(email, before)
    listed = stack.as_(admin_token, "ListInvites", G.ListInvitesRequest(search_text=email.lower())).invites
    assert [(i.invite_id, i.phone, i.role, i.invited_by) for i in listed] == [(invite.invite_id, "+14155550100", I.ROLE_VIEWER, "Alice Anders")]
    refused(lambda: stack.call("InviteMember", G.InviteMemberRequest(email=email.upper(), role=I.ROLE_VIEWER), bearer(admin_token)),
            ALREADY_EXISTS)
    refused(lambda: stack.call("InviteMember", G.InviteMemberRequest(email=world.viewer_a.email, role=I.ROLE_ADMIN), bearer(admin_token)),
            ALREADY_EXISTS)
    message = refused(lambda: stack.call("InviteMember", G.InviteMemberRequest(
        email=f"badphone.{unique()}@{org.domain}", phone="555-0100", role=I.ROLE_VIEWER), bearer(admin_token)), INVALID_ARGUMENT)
    assert "phone" in message

    before = stack.spool()
    resent = stack.as_(admin_token, "ResendInvite", G.ResendInviteRequest(invite_id=invite.invite_id)).invite
    second_secret = stack.secret_for(email, before)
    assert second_secret != first_secret
    assert (resent.added_on.seconds, resent.added_on.nanos) >= (invite.added_on.seconds, invite.added_on.nanos)

    stack.as_(admin_token, "RevokeInvite", G.RevokeInviteRequest(invite_id=invite.invite_id))
    assert stack.as_(admin_token, "ListInvites", G.ListInvitesRequest(search_text=email.lower())).total_size == 0
    refused(lambda: stack.portal.AcceptInvite(G.AcceptInviteRequest(
        invite_secret=second_secret, first_name="Ivy", last_name="Invitee", password=PASSWORD), timeout=T), FAILED_PRECONDITION)
    refused(lambda: stack.call("RevokeInvite", G.RevokeInviteRequest(invite_id=invite.invite_id), bearer(admin_token)), NOT_FOUND)
    refused(lambda: stack.call("ResendInvite", G.ResendInviteRequest(invite_id=invite.invite_id), bearer(admin_token)), NOT_FOUND)

    member = stack.add_member(org, "Mia", "Member")
    updated = stack.as_(admin_token, "UpdateMember", G.UpdateMemberRequest(
        member_id=member.member_id, role=I.ROLE_ADMIN, last_name="Promoted", phone="+14155550199")).member
    assert (updated.first_name, updated.last_name, updated.display_name, updated.role, updated.phone) == (
        "Mia", "Promoted", "Mia Promoted", I.ROLE_ADMIN, "+14155550199")
    members = stack.as_(admin_token, "ListMembers", G.ListMembersRequest(search_text="Promoted", search_field=I.MEMBER_SEARCH_FIELD_LAST_NAME))
    assert [(m.member_id, m.role) for m in members.members] == [(member.member_id, I.ROLE_ADMIN)]
    admins = stack.as_(admin_token, "ListMembers", G.ListMembersRequest(role=I.ROLE_ADMIN, page_size=500)).members
    assert {world.org_a.admin.member_id, member.member_id} <= {m.member_id for m in admins}
    assert all(m.role == I.ROLE_ADMIN for m in admins)

    stack.as_(admin_token, "DeleteMember", G.DeleteMemberRequest(member_id=member.member_id))
    remaining = stack.as_(admin_token, "ListMembers", G.ListMembersRequest(page_size=500)).members
    assert member.member_id not in {m.member_id for m in remaining}
    refused(lambda: stack.call("DeleteMember", G.DeleteMemberRequest(member_id=member.member_id), bearer(admin_token)), NOT_FOUND)
    refused(lambda: stack.call("UpdateMember", G.UpdateMemberRequest(member_id=member.member_id, first_name="Ghost"), bearer(admin_token)),
            NOT_FOUND)


def test_the_last_admin_can_be_neither_deleted_nor_demoted(world):
    """In an organization with one Admin, deleting or demoting that Admin is FAILED_PRECONDITION and
    changes nothing; with a second Admin the first may be demoted."""
    stack = world.stack
    (org,) = stack.create_orgs(("Lara", "Last"))
    token = stack.login(org.admin)
    refused(lambda: stack.call("DeleteMember", G.DeleteMemberRequest(member_id=org.admin.member_id), bearer(token)), FAILED_PRECONDITION)
    refused(lambda: stack.call("UpdateMember", G.UpdateMemberRequest(member_id=org.admin.member_id, role=I.ROLE_VIEWER), bearer(token)),
            FAILED_PRECONDITION)
    assert stack.as_(token, "WhoAmI", G.WhoAmIRequest()).principal.role == I.ROLE_ADMIN
    counts = stack.identity.CountMembers(I.CountMembersRequest(organization_id=org.id), timeout=T)
    assert (counts.total_members, counts.admin_count) == (1, 1)

    second = stack.add_member(org, "Sam", "Second", I.ROLE_VIEWER)
    refused(lambda: stack.call("UpdateMember", G.UpdateMemberRequest(member_id=org.admin.member_id, role=I.ROLE_VIEWER), bearer(token)),
            FAILED_PRECONDITION)
    stack.as_(token, "UpdateMember", G.UpdateMemberRequest(member_id=second.member_id, role=I.ROLE_ADMIN))
    demoted = stack.as_(token, "UpdateMember", G.UpdateMemberRequest(member_id=org.admin.member_id, role=I.ROLE_VIEWER)).member
    assert demoted.role == I.ROLE_VIEWER
    second_token = stack.login(second)
    refused(lambda: stack.call("DeleteMember", G.DeleteMemberRequest(member_id=second.member_id), bearer(second_token)),
            FAILED_PRECONDITION)


# --------------------------------------------------------------------------------------------
# 4b. An expired session is refused by every RPC

SESSION_LIFETIME = 2


@pytest.fixture(scope="module")
def expired_session(stack):
    """A gateway over an identity service whose sessions last SESSION_LIFETIME seconds, and a token
    of it that worked (and sat in the gateway's cache) before it expired."""
    identity_clock, identity_admin_port = support.testing_clock_args()
    gateway_clock, gateway_admin_port = support.testing_clock_args()
    identity_server = stack.launch("identity", "short-session-identity-data", "--session-lifetime", str(SESSION_LIFETIME),
                                   "--audit-address", stack.audit_server.address, *identity_clock)
    gateway_server = stack.launch(
        "gateway", "short-session-gateway-data", *gateway_clock, "--identity-address", identity_server.address,
        "--entitlements-address", stack.entitlements_server.address, "--audit-address", stack.audit_server.address)
    identity = P.identity_grpc.IdentityServiceStub(stack.channel(identity_server.port))
    portal = P.gateway_grpc.PortalServiceStub(stack.channel(gateway_server.port))
    data = stack.root / "short-session-identity-data"
    before = support.spool_files(data)
    email = f"erin.expired@{unique('org')}.example.com"
    organization = identity.CreateOrganization(
        I.CreateOrganizationRequest(name=f"Expiry Co {unique()}", first_admin_email=email, idempotency_key=unique("key-")),
        timeout=T).organization
    identity.AcceptInvite(I.AcceptInviteRequest(
        invite_secret=support.wait_for_invite_secret(data, email, before), first_name="Erin", last_name="Expired", password=PASSWORD),
        timeout=T)
    session = portal.Login(G.LoginRequest(organization_id=organization.organization_id, email=email, password=PASSWORD), timeout=T)
    assert portal.WhoAmI(G.WhoAmIRequest(), metadata=bearer(session.session_token), timeout=T).principal.email == email
    # Past the session's end (identity's clock) and past the gateway's one-second cache (the gateway's).
    support.advance_clock(identity_admin_port, SESSION_LIFETIME + 0.1)
    support.advance_clock(gateway_admin_port, 1.1)
    return portal, session.session_token


@pytest.mark.parametrize("rpc", [rpc for rpc in RPCS if rpc not in {"Login", "AcceptInvite"}])
def test_an_expired_session_is_refused_by_every_rpc(expired_session, rpc):
    """Every RPC that needs a session answers an expired one with UNAUTHENTICATED."""
    portal, token = expired_session
    method = getattr(portal, rpc)
    request = getattr(G, f"{rpc}Request")()

    def call():
        if rpc in STREAMING_RPCS or rpc in LIVE_RPCS:
            return list(method(request, metadata=bearer(token), timeout=T))
        return method(request, metadata=bearer(token), timeout=T)

    refused(call, UNAUTHENTICATED)


def access_log(process: support.ServerProcess) -> list[dict]:
    """The JSON access-log lines a process wrote so far."""
    lines = []
    for line in process.stderr_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "rpc":
            lines.append(entry)
    return lines


def test_access_logs_name_the_organization_and_never_the_token(world):
    """The gateway's and the backend's access logs name the caller's organization for a call made
    with a bearer token; the token itself appears in no log."""
    stack, token = world.stack, world.tokens["admin_a"]
    stack.as_(token, "ListProducts", G.ListProductsRequest(search_text=unique("logged-")))

    def logged() -> bool:
        gateway = [e for e in access_log(stack.gateway_server) if e["method"].endswith("PortalService/ListProducts")]
        backend = [e for e in access_log(stack.entitlements_server) if e["method"].endswith("EntitlementsService/ListProducts")]
        return any(e.get("organization") == world.org_a.id for e in gateway) and any(e.get("organization") == world.org_a.id for e in backend)

    assert support.wait_until(logged, timeout=5), "no access-log line named organization A for the call"
    for process in stack.processes:
        assert token not in process.stderr_path.read_text(errors="replace"), f"{process.name} logged a session token"


# --------------------------------------------------------------------------------------------
# 5. Deleted members and role changes bite within a second

BITE_LIMIT = 1.2
BITE_POLL = 2.0


def warm(stack: Stack, token: str, rpc: str, request) -> None:
    """Calls an RPC a few times so the gateway has the token's caller in its cache."""
    for _ in range(3):
        stack.as_(token, rpc, request)


def test_a_member_deleted_on_identity_is_refused_within_a_second(world):
    """A member deleted behind the gateway's back (on identity directly) is UNAUTHENTICATED on the
    gateway within 1.2 s, however warm the session was."""
    stack, org = world.stack, world.org_a
    member = stack.add_member(org, "Dan", "Deleted")
    token = stack.login(member)
    warm(stack, token, "WhoAmI", G.WhoAmIRequest())
    stack.identity.DeleteMember(
        I.DeleteMemberRequest(organization_id=org.id, member_id=member.member_id), metadata=Stack.acting(org.admin), timeout=T)
    took = poll_code(lambda: stack.call("WhoAmI", G.WhoAmIRequest(), bearer(token)), UNAUTHENTICATED, BITE_POLL)
    assert took is not None, f"the deleted member's token still worked {BITE_POLL} s after the deletion"
    assert took <= BITE_LIMIT, f"the deleted member's token worked for {took:.2f} s"
    refused(lambda: stack.call("ListProducts", G.ListProductsRequest(), bearer(token)), UNAUTHENTICATED)


def test_a_member_deleted_through_the_gateway_is_refused_at_once(world):
    """The gateway that deletes a member forgets their sessions: the very next call is refused."""
    stack = world.stack
    member = stack.add_member(world.org_a, "Ida", "Immediate")
    token = stack.login(member)
    warm(stack, token, "WhoAmI", G.WhoAmIRequest())
    stack.as_(world.tokens["admin_a"], "DeleteMember", G.DeleteMemberRequest(member_id=member.member_id))
    refused(lambda: stack.call("WhoAmI", G.WhoAmIRequest(), bearer(token)), UNAUTHENTICATED)


def test_a_role_change_takes_effect_within_a_second(world):
    """An Admin demoted to Viewer loses the Admin capabilities within 1.2 s when the change is made on
    identity directly, and on the very next call when it is made through the gateway; a promotion
    grants them back the same way."""
    stack, org = world.stack, world.org_a
    member = stack.add_member(org, "Rory", "Role", I.ROLE_ADMIN)
    token = stack.login(member)
    warm(stack, token, "ListMembers", G.ListMembersRequest())

    stack.identity.UpdateMember(
        I.UpdateMemberRequest(organization_id=org.id, member_id=member.member_id, role=I.ROLE_VIEWER),
        metadata=Stack.acting(org.admin), timeout=T)
    took = poll_code(lambda: stack.call("ListMembers", G.ListMembersRequest(), bearer(token)), PERMISSION_DENIED, BITE_POLL)
    assert took is not None, f"the demoted Admin could still list members {BITE_POLL} s after the change"
    assert took <= BITE_LIMIT, f"the demoted Admin kept Admin rights for {took:.2f} s"
    who = stack.as_(token, "WhoAmI", G.WhoAmIRequest()).principal
    assert who.role == I.ROLE_VIEWER
    board = stack.as_(token, "GetDashboard", G.GetDashboardRequest())
    assert not board.HasField("total_members") and list(board.quick_actions) == []

    admin_token = world.tokens["admin_a"]
    stack.as_(admin_token, "UpdateMember", G.UpdateMemberRequest(member_id=member.member_id, role=I.ROLE_ADMIN))
    assert stack.as_(token, "WhoAmI", G.WhoAmIRequest()).principal.role == I.ROLE_ADMIN
    stack.as_(token, "ListMembers", G.ListMembersRequest())
    stack.as_(admin_token, "UpdateMember", G.UpdateMemberRequest(member_id=member.member_id, role=I.ROLE_VIEWER))
    refused(lambda: stack.call("ListMembers", G.ListMembersRequest(), bearer(token)), PERMISSION_DENIED)
    stack.as_(admin_token, "DeleteMember", G.DeleteMemberRequest(member_id=member.member_id))


# --------------------------------------------------------------------------------------------
# 6. Backends down and deadlines


def assert_plain_outage_message(message: str, capability: str) -> None:
    """An outage message names what the user cannot use and the request id, never an address or an error dump."""
    assert message.startswith(f"{capability} is unavailable right now"), message
    assert re.search(r"\(request [A-Za-z0-9._-]+\)$", message), f"no request id in {message!r}"
    for leak in ("127.0.0.1", "Connection", "Error", "SingleConnectionFailure", "cannot reach"):
        assert leak not in message, f"{leak!r} reaches the portal user: {message!r}"


def test_a_stopped_backend_is_unavailable_naming_it(world):
    """With its audit service stopped, a gateway answers the audit log's calls UNAVAILABLE in plain
    words ("the audit log is unavailable right now", with the request id) within a few seconds, the
    dashboard shows everything but the recent events (marked unavailable), and the rest works."""
    stack = world.stack
    audit = stack.launch("audit", f"audit-down-{unique()}")
    gateway = stack.start_gateway(f"gateway-down-{unique()}", audit.address)
    portal = P.gateway_grpc.PortalServiceStub(stack.channel(gateway.port))
    token = portal.Login(G.LoginRequest(
        organization_id=world.org_a.id, email=world.org_a.admin.email, password=PASSWORD), timeout=T).session_token
    metadata = bearer(token)
    healthy = portal.GetDashboard(G.GetDashboardRequest(), metadata=metadata, timeout=T)
    assert healthy.available_licenses > 0

    audit.stop()
    started = time.monotonic()
    degraded = portal.GetDashboard(G.GetDashboardRequest(), metadata=metadata, timeout=5)
    assert time.monotonic() - started < 3.0
    assert list(degraded.unavailable_sections) == [G.DASHBOARD_SECTION_RECENT_EVENTS]
    assert (degraded.available_licenses, degraded.activated_licenses) == (healthy.available_licenses, healthy.activated_licenses)
    assert degraded.HasField("total_members") and list(degraded.recent_events) == []
    assert list(healthy.unavailable_sections) == []
    for name, call in (
        ("ListAuditEvents", lambda: portal.ListAuditEvents(G.ListAuditEventsRequest(), metadata=metadata, timeout=5)),
        ("ExportAuditEventsCsv", lambda: list(portal.ExportAuditEventsCsv(G.ExportAuditEventsCsvRequest(), metadata=metadata, timeout=5))),
    ):
        started = time.monotonic()
        code, result = outcome(call)
        took = time.monotonic() - started
        assert code == UNAVAILABLE, f"{name} with audit down: expected UNAVAILABLE, got {code.name} {getattr(result, 'details', lambda: '')()!r}"
        assert_plain_outage_message(result.details(), "the audit log")
        assert took < 3.0, f"{name} took {took:.1f} s to report the stopped backend"
    products = portal.ListProducts(G.ListProductsRequest(), metadata=metadata, timeout=T)
    assert world.product_a in {p.product.product_id for p in products.products}
    assert portal.WhoAmI(G.WhoAmIRequest(), metadata=metadata, timeout=T).principal.member_id == world.org_a.admin.member_id
    gateway.stop()


def test_a_backend_that_never_ran_is_unavailable_naming_it(world):
    """A gateway whose entitlements address has nothing listening answers licensing calls
    UNAVAILABLE naming entitlements, quickly."""
    stack = world.stack
    gateway = stack.start_gateway(f"gateway-noent-{unique()}", stack.audit_server.address, f"127.0.0.1:{support.free_port()}")
    portal = P.gateway_grpc.PortalServiceStub(stack.channel(gateway.port))
    metadata = bearer(portal.Login(G.LoginRequest(
        organization_id=world.org_a.id, email=world.viewer_a.email, password=PASSWORD), timeout=T).session_token)
    started = time.monotonic()
    message = refused(lambda: portal.ListProducts(G.ListProductsRequest(), metadata=metadata, timeout=5), UNAVAILABLE)
    assert time.monotonic() - started < 3.0, message
    assert_plain_outage_message(message, "licensing")
    request_id = re.search(r"\(request ([A-Za-z0-9._-]+)\)$", message).group(1)
    def logged() -> list[dict]:
        return [line for line in access_log(gateway) if line.get("request_id") == request_id]

    assert support.wait_until(lambda: logged() and "127.0.0.1" in logged()[0].get("cause", ""), timeout=5), \
        f"the log keeps the cause for the request id: {logged()}"
    dashboard = portal.GetDashboard(G.GetDashboardRequest(), metadata=metadata, timeout=5)
    assert list(dashboard.unavailable_sections) == [G.DASHBOARD_SECTION_LICENSES] and dashboard.available_licenses == 0
    refused(lambda: portal.ListActivations(G.ListActivationsRequest(), metadata=metadata, timeout=5), UNAVAILABLE)
    assert portal.ListAuditEvents(G.ListAuditEventsRequest(), metadata=metadata, timeout=T).total_size > 0
    gateway.stop()


DEADLINE_CASES = [
    ("GetDashboard", lambda w: G.GetDashboardRequest()),
    ("ListActivations", lambda w: G.ListActivationsRequest()),
    ("ExportAuditEventsCsv", lambda w: G.ExportAuditEventsCsvRequest()),
    ("Activate", lambda w: G.ActivateRequest(
        entitlement_id=w.entitlement_a, product_id=w.product_a, quantity=1, project_name="Too Late",
        project_manager="Grace Hopper", idempotency_key=uuid.uuid4().hex)),
]


def activated_licenses(w: World) -> int:
    """Licenses activated on organization A's large entitlement, read from the backend."""
    return w.stack.entitlements.GetEntitlement(
        E.GetEntitlementRequest(organization_id=w.org_a.id, entitlement_id=w.entitlement_a),
        timeout=T).entitlement.total_activated_licenses


@pytest.mark.parametrize("rpc, build", DEADLINE_CASES, ids=[case[0] for case in DEADLINE_CASES])
def test_a_spent_deadline_reaching_the_gateway_is_deadline_exceeded(world, rpc, build):
    """A request that reaches the gateway with its deadline already spent (grpc-timeout 1n) is
    answered DEADLINE_EXCEEDED by the gateway itself, without acting on it."""
    before = activated_licenses(world)
    with support.RawH2Client(world.stack.gateway_server.port) as client:
        headers = support.grpc_request_headers(
            f"/portal.gateway.v1.PortalService/{rpc}",
            extra=[("grpc-timeout", "1n"), ("authorization", f"Bearer {world.tokens['admin_a']}")])
        stream_id = client.request(headers, support.grpc_frame(build(world).SerializeToString()))
        result = client.wait_for(stream_id, timeout=5)
    assert result.done, result.describe()
    assert result.grpc_status == DEADLINE_EXCEEDED.value[0], result.describe()
    assert activated_licenses(world) == before


class SilentBackend:
    """A loopback HTTP/2 server that completes the connection handshake and then never answers a
    request: a backend that hangs."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.requests = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        """Accepts connections until closed."""
        while not self.closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        """Answers the HTTP/2 handshake and PINGs, and never a request."""
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        try:
            sock.sendall(conn.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self.requests += 1
                sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            return

    def close(self) -> None:
        """Closes the listener and every connection."""
        self.closed = True
        for sock in [self.listener, *self.connections]:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture(scope="module")
def hanging_audit_gateway(world):
    """A gateway whose audit backend accepts calls and never answers them."""
    silent = SilentBackend()
    gateway = world.stack.start_gateway(f"gateway-hang-{unique()}", silent.address)
    portal = P.gateway_grpc.PortalServiceStub(world.stack.channel(gateway.port))
    token = portal.Login(G.LoginRequest(
        organization_id=world.org_a.id, email=world.org_a.admin.email, password=PASSWORD), timeout=T).session_token
    yield gateway, portal, bearer(token), silent
    silent.close()


HANGING_CALLS = [
    ("GetDashboard", lambda portal, metadata, timeout: portal.GetDashboard(G.GetDashboardRequest(), metadata=metadata, timeout=timeout)),
    ("ListAuditEvents", lambda portal, metadata, timeout: portal.ListAuditEvents(
        G.ListAuditEventsRequest(), metadata=metadata, timeout=timeout)),
    ("ExportAuditEventsCsv", lambda portal, metadata, timeout: list(portal.ExportAuditEventsCsv(
        G.ExportAuditEventsCsvRequest(), metadata=metadata, timeout=timeout))),
]


@pytest.mark.parametrize("rpc, call", HANGING_CALLS, ids=[case[0] for case in HANGING_CALLS])
def test_a_short_caller_deadline_ends_a_call_to_a_hanging_backend(hanging_audit_gateway, rpc, call):
    """With a backend that never answers, calls with a 1 ms and a 300 ms deadline fail
    DEADLINE_EXCEEDED promptly instead of hanging; calls that do not need that backend still work."""
    _, portal, metadata, silent = hanging_audit_gateway
    requests_before = silent.requests
    for deadline in (0.001, 0.3):
        started = time.monotonic()
        refused(lambda: call(portal, metadata, deadline), DEADLINE_EXCEEDED)
        took = time.monotonic() - started
        assert took < deadline + 0.7, f"{rpc} took {took:.2f} s with a {deadline * 1000:.0f} ms deadline"
    assert silent.requests > requests_before, "the call never reached the hanging backend"
    assert portal.WhoAmI(G.WhoAmIRequest(), metadata=metadata, timeout=T).principal.role == I.ROLE_ADMIN
    assert portal.ListProducts(G.ListProductsRequest(), metadata=metadata, timeout=T).total_size > 0


def test_calls_answered_at_their_deadline_do_not_linger_in_the_gateway(world):
    """Dashboards whose shared audit read hangs are answered at their deadlines, and their handlers
    end then too: the gateway, asked to stop right after, exits at once instead of waiting out its
    grace period for handlers still blocked on the hanging read."""
    silent = SilentBackend()
    try:
        gateway = world.stack.start_gateway(f"gateway-linger-{unique()}", silent.address)
        channel = support.make_channel(gateway.port)
        portal = P.gateway_grpc.PortalServiceStub(channel)
        token = portal.Login(G.LoginRequest(
            organization_id=world.org_a.id, email=world.org_a.admin.email, password=PASSWORD), timeout=T).session_token
        for deadline in (0.001, 0.3, 0.3):
            refused(lambda: portal.GetDashboard(G.GetDashboardRequest(), metadata=bearer(token), timeout=deadline), DEADLINE_EXCEEDED)
        channel.close()
        started = time.monotonic()
        gateway.terminate()
        code = gateway.wait_exit(support.SHUTDOWN_TIMEOUT)
        took = time.monotonic() - started
        assert code == 0, f"the gateway exited with {code}"
        assert took < 3, f"the gateway took {took:.1f} s to stop: handlers were still waiting on the hanging read"
    finally:
        silent.close()


def test_the_gateway_itself_ends_a_call_at_the_callers_deadline(hanging_audit_gateway, world):
    """The gateway, not only the client, gives up at the caller's deadline: a raw request with
    grpc-timeout 300m whose backend hangs gets grpc-status DEADLINE_EXCEEDED from the gateway in time."""
    gateway, _, metadata, _ = hanging_audit_gateway
    with support.RawH2Client(gateway.port) as client:
        headers = support.grpc_request_headers(
            "/portal.gateway.v1.PortalService/ListAuditEvents", extra=[("grpc-timeout", "300m"), *metadata])
        started = time.monotonic()
        stream_id = client.request(headers, support.grpc_frame(G.ListAuditEventsRequest().SerializeToString()))
        result = client.wait_for(stream_id, timeout=5)
        took = time.monotonic() - started
    assert result.done, result.describe()
    assert result.grpc_status == DEADLINE_EXCEEDED.value[0], result.describe()
    assert took < 1.5, f"the gateway answered after {took:.2f} s"
