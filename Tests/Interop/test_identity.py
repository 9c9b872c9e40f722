"""grpcio against a real `portal identity` process: portal.identity.v1.IdentityService end to end.

Organizations, invites (secrets read from the mail spool), members, lists, sessions, tenant
isolation, concurrency, idempotency and login rate limiting. One server serves the module; every
test makes organizations of its own, so the tests do not depend on each other. The rate-limit tests
start servers of their own (every call comes from 127.0.0.1, so a per-source limit would otherwise
leak into other tests) and come last.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import pytest

import support
from support import CALL_TIMEOUT as T

P = support.protos()
I = P.identity  # portal.identity.v1 messages
ADMIN, VIEWER, ROLE_UNSPECIFIED = I.ROLE_ADMIN, I.ROLE_VIEWER, I.ROLE_UNSPECIFIED
OK = grpc.StatusCode.OK
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED

PASSWORD = "correct horse battery staple"
INVITE_LIFETIME_MS = 7 * 24 * 3600 * 1000
# How long to watch the spool for mail that must NOT come (the mail relay wakes on the commit that
# queues a mail and delivers within milliseconds; the rest is room for a loaded machine).
QUIET_PERIOD = 1.0

_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}x{uuid.uuid4().hex[:8]}"


def ms(ts) -> int:
    """A google.protobuf.Timestamp in milliseconds."""
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------------
# The server and small helpers


@dataclass
class Identity:
    """A running identity server: its data folder and a generated stub on one channel."""

    server: support.ServerProcess
    data_dir: Path
    channel: grpc.Channel
    stub: object
    admin_port: int | None = None  # with a testing clock, the port that moves it

    def spool(self) -> set[str]:
        return support.spool_files(self.data_dir)

    def secret_for(self, email: str, before: set[str]) -> str:
        return support.wait_for_invite_secret(self.data_dir, email, before)


def open_identity(server: support.ServerProcess, data_dir: Path) -> Identity:
    channel = support.make_channel(server.port)
    return Identity(server, data_dir, channel, P.identity_grpc.IdentityServiceStub(channel))


def identity_argv(portal_bin: str, data_dir: Path) -> list[str]:
    return [portal_bin, "identity", "--data-dir", str(data_dir)]


@pytest.fixture(scope="module")
def idn(portal_bin, tmp_path_factory):
    """One `portal identity` server for the module, on a fresh data folder."""
    root = tmp_path_factory.mktemp("identity")
    data_dir = root / "data"
    server = support.ServerProcess(identity_argv(portal_bin, data_dir), "identity", root / "logs")
    server.start()
    identity = open_identity(server, data_dir)
    try:
        yield identity
    finally:
        identity.channel.close()
        try:
            server.stop()
        finally:
            server.kill()


@pytest.fixture
def fresh_idn(portal_bin, start_server, tmp_path):
    """A `portal identity` server of the test's own (stopped with SIGTERM when the test ends), on a
    clock the test moves with `support.advance_clock(identity.admin_port, seconds)`."""
    data_dir = tmp_path / "identity-data"
    clock_args, admin_port = support.testing_clock_args()
    server = start_server(identity_argv(portal_bin, data_dir) + clock_args, "fresh-identity")
    identity = open_identity(server, data_dir)
    identity.admin_port = admin_port
    yield identity
    identity.channel.close()


def acting(member) -> list[tuple[str, str]]:
    """The metadata the gateway sets for the acting member."""
    return [("x-portal-member-id", member.member_id), ("x-portal-display-name", member.display_name)]


def expect_error(method, request, code: grpc.StatusCode, field_name: str | None = None, metadata=None) -> grpc.RpcError:
    """Calls `method` and asserts it fails with `code` (and a message naming `field_name`)."""
    try:
        response = method(request, metadata=metadata, timeout=T)
    except grpc.RpcError as error:
        assert error.code() == code, (
            f"expected {code.name}{f' naming {field_name}' if field_name else ''}, "
            f"got {error.code().name}: {error.details()!r} (request: {request!r})"
        )
        if field_name is not None:
            assert names_field(error.details() or "", field_name), (
                f"{code.name} as expected, but the message does not name {field_name!r}: {error.details()!r}"
            )
        return error
    pytest.fail(f"expected {code.name}, the call succeeded (request: {request!r}) with {response!r}", pytrace=False)


def expect_error_any(method, request, codes: set, metadata=None) -> grpc.RpcError:
    try:
        response = method(request, metadata=metadata, timeout=T)
    except grpc.RpcError as error:
        expected = sorted(c.name for c in codes)
        assert error.code() in codes, f"expected one of {expected}, got {error.code().name}: {error.details()!r}"
        return error
    pytest.fail(f"expected one of {sorted(c.name for c in codes)}, the call succeeded with {response!r}", pytrace=False)


def call_ok(method, request, context: str, metadata=None):
    """Calls `method`, failing the test readably (code and message) if the call fails."""
    try:
        return method(request, metadata=metadata, timeout=T)
    except grpc.RpcError as error:
        pytest.fail(f"{context}: expected OK, got {error.code().name}: {error.details()!r}", pytrace=False)


def names_field(message: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


@dataclass
class Org:
    id: str
    name: str
    domain: str
    admin_email: str
    created: object  # CreateOrganizationResponse
    admin: object | None = None  # Member, once the first Admin accepted

    def email(self, local: str) -> str:
        return f"{local}@{self.domain}"


def create_org(idn: Identity, with_admin: bool = True, first: str = "Ada", last: str = "Admin", password: str = PASSWORD) -> Org:
    """A fresh organization; with `with_admin` its first Admin has accepted the invite."""
    name = unique("Org ")
    domain = f"{unique('org')}.example.com"
    admin_email = f"admin@{domain}"
    before = idn.spool()
    created = idn.stub.CreateOrganization(
        I.CreateOrganizationRequest(name=name, first_admin_email=admin_email, idempotency_key=unique("key-")), timeout=T
    )
    org = Org(created.organization.organization_id, name, domain, admin_email, created)
    if with_admin:
        secret = idn.secret_for(admin_email, before)
        org.admin = accept(idn, secret, first, last, password)
    return org


def invite(idn: Identity, org: Org, email: str, role=VIEWER, phone: str = "", actor=None):
    """Creates an invite and returns it with the secret from its mail."""
    before = idn.spool()
    response = idn.stub.CreateInvite(
        I.CreateInviteRequest(organization_id=org.id, email=email, phone=phone, role=role),
        metadata=acting(actor) if actor is not None else None,
        timeout=T,
    )
    return response.invite, idn.secret_for(email, before)


def accept(idn: Identity, secret: str, first: str, last: str, password: str = PASSWORD):
    request = I.AcceptInviteRequest(invite_secret=secret, first_name=first, last_name=last, password=password)
    return idn.stub.AcceptInvite(request, timeout=T).member


def add_member(
    idn: Identity, org: Org, email: str, first: str, last: str, role=VIEWER, phone: str = "", password: str = PASSWORD
):
    _, secret = invite(idn, org, email, role=role, phone=phone, actor=org.admin)
    return accept(idn, secret, first, last, password)


def login(idn: Identity, org: Org, email: str, password: str = PASSWORD):
    return idn.stub.Login(I.LoginRequest(organization_id=org.id, email=email, password=password), timeout=T)


def authenticate(idn: Identity, token: str):
    return idn.stub.Authenticate(I.AuthenticateRequest(session_token=token), timeout=T)


def counts(idn: Identity, org: Org) -> tuple[int, int, int]:
    response = idn.stub.CountMembers(I.CountMembersRequest(organization_id=org.id), timeout=T)
    return response.total_members, response.admin_count, response.viewer_count


def get_member(idn: Identity, org: Org, member_id: str):
    return idn.stub.GetMember(I.GetMemberRequest(organization_id=org.id, member_id=member_id), timeout=T).member


def list_invites(idn: Identity, org: Org, **kwargs):
    return idn.stub.ListInvites(I.ListInvitesRequest(organization_id=org.id, **kwargs), timeout=T)


def list_members(idn: Identity, org: Org, **kwargs):
    return idn.stub.ListMembers(I.ListMembersRequest(organization_id=org.id, **kwargs), timeout=T)


def list_all(fetch, request_kwargs: dict, page_size: int, items: str, limit: int = 100) -> tuple[list, list]:
    """Pages through a list with `fetch(**request)`; returns (all items, the responses)."""
    collected, responses, token = [], [], ""
    for _ in range(limit):
        response = fetch(page_size=page_size, page_token=token, **request_kwargs)
        responses.append(response)
        collected.extend(getattr(response, items))
        token = response.next_page_token
        if not token:
            return collected, responses
    pytest.fail(f"paging did not end after {limit} pages")


def assert_principal(principal, member, role=None) -> None:
    assert principal.member_id == member.member_id
    assert principal.organization_id == member.organization_id
    assert principal.role == (member.role if role is None else role)
    assert principal.display_name == member.display_name
    assert principal.email == member.email


def wait_quiet_then_mails(idn: Identity, email: str, before: set[str]) -> list:
    """The new mails to `email` after the mailer had time to deliver everything queued."""
    # Counting mails proves none was sent twice, and an absence can only be waited for: the relay
    # sends within milliseconds of the commit that queued a mail, so QUIET_PERIOD is ample.
    time.sleep(QUIET_PERIOD)
    return support.invite_mails(idn.data_dir, email, before)


def outcomes(futures) -> list[grpc.StatusCode]:
    codes = []
    for future in futures:
        error = future.exception()
        codes.append(OK if error is None else error.code())
    return codes


# --------------------------------------------------------------------------------------------
# 1. The whole flow


def test_whole_flow_from_organization_to_deleted_member(idn):
    """Create org → Admin accepts, logs in → invites a Viewer → Viewer accepts, logs in → promoted
    (visible to Authenticate at once) → deleted (token dead, NOT_FOUND, count back to 1)."""
    stub = idn.stub
    name = unique("Flow Org ")
    admin_email = f"Ada.Lovelace@{unique('flow')}.example.com"
    started = now_ms()
    before = idn.spool()
    created = stub.CreateOrganization(
        I.CreateOrganizationRequest(name=name, first_admin_email=admin_email, idempotency_key=unique("flow-")), timeout=T
    )
    organization, admin_invite = created.organization, created.first_admin_invite
    assert organization.organization_id
    assert organization.name == name
    assert started - 5000 <= ms(organization.created_at) <= now_ms() + 5000
    assert admin_invite.invite_id
    assert admin_invite.organization_id == organization.organization_id
    assert admin_invite.email == admin_email
    assert admin_invite.role == ADMIN
    assert admin_invite.invited_by == "system"
    assert admin_invite.invited_by_member_id == ""
    assert admin_invite.status == I.INVITE_STATUS_PENDING
    assert ms(admin_invite.expires_at) - ms(admin_invite.added_on) == INVITE_LIFETIME_MS
    org = Org(organization.organization_id, name, admin_email.split("@")[1], admin_email, created)

    pending = list_invites(idn, org)
    assert [i.invite_id for i in pending.invites] == [admin_invite.invite_id]
    assert pending.total_size == 1
    assert counts(idn, org) == (0, 0, 0)

    # The first Admin accepts with the secret from the mail.
    secret = idn.secret_for(admin_email, before)
    admin = accept(idn, secret, "Ada", "Lovelace")
    assert admin.member_id
    assert admin.organization_id == org.id
    assert (admin.first_name, admin.last_name, admin.display_name) == ("Ada", "Lovelace", "Ada Lovelace")
    assert admin.email == admin_email
    assert admin.phone == ""
    assert admin.role == ADMIN
    assert ms(admin.created_at) >= started - 5000
    assert list_invites(idn, org).total_size == 0, "an accepted invite must leave the invites list"
    assert counts(idn, org) == (1, 1, 0)

    # Login (email case-insensitive) and Authenticate.
    admin_login = login(idn, org, admin_email.upper())
    assert admin_login.session_token
    assert ms(admin_login.expires_at) > now_ms()
    assert_principal(admin_login.principal, admin)
    admin_auth = authenticate(idn, admin_login.session_token)
    assert_principal(admin_auth.principal, admin)
    assert ms(admin_auth.expires_at) == ms(admin_login.expires_at)

    # The Admin invites a Viewer; invited_by is the acting member from metadata.
    viewer_email = f"vera.viewer@{org.domain}"
    before = idn.spool()
    viewer_invite = stub.CreateInvite(
        I.CreateInviteRequest(organization_id=org.id, email=viewer_email, phone="+14155550100", role=VIEWER),
        metadata=acting(admin),
        timeout=T,
    ).invite
    assert viewer_invite.invited_by == "Ada Lovelace"
    assert viewer_invite.invited_by_member_id == admin.member_id
    assert (viewer_invite.email, viewer_invite.phone, viewer_invite.role) == (viewer_email, "+14155550100", VIEWER)
    assert viewer_invite.status == I.INVITE_STATUS_PENDING
    viewer = accept(idn, idn.secret_for(viewer_email, before), "Vera", "Viewer")
    assert (viewer.role, viewer.phone, viewer.display_name) == (VIEWER, "+14155550100", "Vera Viewer")
    viewer_login = login(idn, org, viewer_email)
    assert_principal(viewer_login.principal, viewer)
    assert_principal(authenticate(idn, viewer_login.session_token).principal, viewer)
    assert counts(idn, org) == (2, 1, 1)

    # The Admin promotes the Viewer: Authenticate reports the current role at once.
    promoted = stub.UpdateMember(
        I.UpdateMemberRequest(organization_id=org.id, member_id=viewer.member_id, role=ADMIN), metadata=acting(admin), timeout=T
    ).member
    assert promoted.role == ADMIN
    kept = (promoted.first_name, promoted.last_name, promoted.phone, promoted.email)
    assert kept == ("Vera", "Viewer", "+14155550100", viewer_email)
    assert get_member(idn, org, viewer.member_id).role == ADMIN
    assert authenticate(idn, viewer_login.session_token).principal.role == ADMIN
    assert counts(idn, org) == (2, 2, 0)

    # The Admin deletes the promoted member: their session ends at once.
    delete = I.DeleteMemberRequest(organization_id=org.id, member_id=viewer.member_id)
    stub.DeleteMember(delete, metadata=acting(admin), timeout=T)
    expect_error(stub.Authenticate, I.AuthenticateRequest(session_token=viewer_login.session_token), UNAUTHENTICATED)
    expect_error(stub.GetMember, I.GetMemberRequest(organization_id=org.id, member_id=viewer.member_id), NOT_FOUND)
    assert counts(idn, org) == (1, 1, 0)
    assert [m.member_id for m in list_members(idn, org).members] == [admin.member_id]

    # The Admin's session is untouched; Logout ends it; Logout is idempotent.
    assert_principal(authenticate(idn, admin_login.session_token).principal, admin)
    stub.Logout(I.LogoutRequest(session_token=admin_login.session_token), timeout=T)
    expect_error(stub.Authenticate, I.AuthenticateRequest(session_token=admin_login.session_token), UNAUTHENTICATED)
    stub.Logout(I.LogoutRequest(session_token=admin_login.session_token), timeout=T)


# --------------------------------------------------------------------------------------------
# 2. Refusals: validation


BAD_EMAILS = [
    "plainaddress",
    "@example.com",
    "user@",
    "user@@example.com",
    "a@b@example.com",
    "user name@example.com",
    "user@example..com",
    "user@.example.com",
    "<user@example.com>",
    "",
]
BAD_PHONES = [
    "4155550100",
    "14155550100",
    "+1234567",
    "+1234567890123456",
    "+1 415 555 0100",
    "+1-415-555-0100",
    "+1(415)5550100",
    "++14155550100",
    "+1415555010x",
    "+",
    "14155550100+",
]
GOOD_PHONES = ["", "+12345678", "+123456789012345", "+14155550100", "+442071234567"]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_create_invite_refuses_malformed_email(idn, email):
    org = create_org(idn, with_admin=False)
    request = I.CreateInviteRequest(organization_id=org.id, email=email, role=VIEWER)
    expect_error(idn.stub.CreateInvite, request, INVALID_ARGUMENT, "email")
    assert list_invites(idn, org).total_size == 1, "only the first Admin's invite"


@pytest.mark.parametrize("phone", BAD_PHONES)
def test_create_invite_refuses_phone_not_e164(idn, phone):
    org = create_org(idn, with_admin=False)
    request = I.CreateInviteRequest(organization_id=org.id, email=org.email("p"), phone=phone, role=VIEWER)
    expect_error(idn.stub.CreateInvite, request, INVALID_ARGUMENT, "phone")
    assert list_invites(idn, org).total_size == 1


def test_create_invite_accepts_e164_phones_and_none(idn):
    org = create_org(idn, with_admin=False)
    for index, phone in enumerate(GOOD_PHONES):
        request = I.CreateInviteRequest(organization_id=org.id, email=org.email(f"good{index}"), phone=phone, role=VIEWER)
        assert idn.stub.CreateInvite(request, timeout=T).invite.phone == phone


@pytest.mark.parametrize("role", [ROLE_UNSPECIFIED, 7])
def test_create_invite_refuses_missing_or_unknown_role(idn, role):
    org = create_org(idn, with_admin=False)
    request = I.CreateInviteRequest(organization_id=org.id, email=org.email("r"), role=role)
    expect_error(idn.stub.CreateInvite, request, INVALID_ARGUMENT, "role")


def test_create_invite_in_unknown_organization_is_not_found(idn):
    request = I.CreateInviteRequest(organization_id=unique("org_missing"), email="x@example.com", role=VIEWER)
    expect_error(idn.stub.CreateInvite, request, NOT_FOUND)


EMPTY_ORG_CALLS = {
    "CreateInvite": lambda: I.CreateInviteRequest(email="x@example.com", role=VIEWER),
    "ResendInvite": lambda: I.ResendInviteRequest(invite_id="inv_x"),
    "RevokeInvite": lambda: I.RevokeInviteRequest(invite_id="inv_x"),
    "ListMembers": lambda: I.ListMembersRequest(),
    "ListInvites": lambda: I.ListInvitesRequest(),
    "GetMember": lambda: I.GetMemberRequest(member_id="mem_x"),
    "UpdateMember": lambda: I.UpdateMemberRequest(member_id="mem_x", first_name="X"),
    "DeleteMember": lambda: I.DeleteMemberRequest(member_id="mem_x"),
    "CountMembers": lambda: I.CountMembersRequest(),
    "ListMemberships": lambda: I.ListMembershipsRequest(member_id="mem_x"),
    "Login (choice token)": lambda: I.LoginRequest(choice_token="c" * 43),
}


@pytest.mark.parametrize("method", sorted(EMPTY_ORG_CALLS))
def test_empty_organization_id_is_invalid_argument(idn, method):
    expect_error(getattr(idn.stub, method.split(" ")[0]), EMPTY_ORG_CALLS[method](), INVALID_ARGUMENT, "organization_id")


@pytest.mark.parametrize(
    "name,email,field_name",
    [
        ("", "first@example.com", "name"),
        ("   ", "first@example.com", "name"),
        ("Named Org", "not-an-email", "first_admin_email"),
        ("Named Org", "", "first_admin_email"),
    ],
)
def test_create_organization_validates_fields(idn, name, email, field_name):
    request = I.CreateOrganizationRequest(name=name, first_admin_email=email, idempotency_key=unique("bad-org-"))
    expect_error(idn.stub.CreateOrganization, request, INVALID_ARGUMENT, field_name)


def test_accept_invite_validates_names_and_password_without_using_the_invite(idn):
    org = create_org(idn, with_admin=False)
    secret = idn.secret_for(org.admin_email, set())
    cases = [
        (dict(first_name="", last_name="Last", password=PASSWORD), "first_name"),
        (dict(first_name="   ", last_name="Last", password=PASSWORD), "first_name"),
        (dict(first_name="First", last_name="", password=PASSWORD), "last_name"),
        (dict(first_name="First", last_name="  ", password=PASSWORD), "last_name"),
        (dict(first_name="First", last_name="Last", password=""), "password"),
        (dict(first_name="First", last_name="Last", password="short"), "password"),
        (dict(first_name="First", last_name="Last", password="12345678901"), "password"),  # 11 characters
        (dict(first_name="First", last_name="Last", password="é" * 11), "password"),  # 11 characters, 22 bytes
    ]
    for fields, field_name in cases:
        expect_error(idn.stub.AcceptInvite, I.AcceptInviteRequest(invite_secret=secret, **fields), INVALID_ARGUMENT, field_name)
    # None of the refusals used the invite: it is still pending and a 12-character password works.
    assert list_invites(idn, org).total_size == 1
    member = accept(idn, secret, "First", "Last", password="123456789012")
    assert member.role == ADMIN
    assert login(idn, org, org.admin_email, "123456789012").principal.member_id == member.member_id


def test_update_member_validates_fields_and_keeps_unset_ones(idn):
    org = create_org(idn)
    member = add_member(idn, org, org.email("uma"), "Uma", "Update", phone="+14155550100")
    session = login(idn, org, member.email).session_token
    stub = idn.stub

    def update(**kwargs):
        request = I.UpdateMemberRequest(organization_id=org.id, member_id=member.member_id, **kwargs)
        return stub.UpdateMember(request, metadata=acting(org.admin), timeout=T).member

    unchanged = update()
    original = ("Uma", "Update", "+14155550100", VIEWER)
    assert (unchanged.first_name, unchanged.last_name, unchanged.phone, unchanged.role) == original

    for kwargs, field_name in [
        (dict(first_name=""), "first_name"),
        (dict(last_name="   "), "last_name"),
        (dict(phone="12345"), "phone"),
        (dict(phone="+1 415 555 0100"), "phone"),
        (dict(role=ROLE_UNSPECIFIED), "role"),
        (dict(role=9), "role"),
    ]:
        request = I.UpdateMemberRequest(organization_id=org.id, member_id=member.member_id, **kwargs)
        expect_error(stub.UpdateMember, request, INVALID_ARGUMENT, field_name, metadata=acting(org.admin))
    stored = get_member(idn, org, member.member_id)
    assert (stored.first_name, stored.last_name, stored.phone, stored.role) == original

    renamed = update(first_name="Ursula")
    assert (renamed.first_name, renamed.last_name, renamed.display_name) == ("Ursula", "Update", "Ursula Update")
    assert (renamed.phone, renamed.role, renamed.email) == ("+14155550100", VIEWER, member.email)
    assert authenticate(idn, session).principal.display_name == "Ursula Update"

    no_phone = update(phone="")
    assert (no_phone.phone, no_phone.first_name, no_phone.last_name) == ("", "Ursula", "Update")
    new_phone = update(phone="+442071234567")
    assert (new_phone.phone, new_phone.first_name) == ("+442071234567", "Ursula")
    new_last = update(last_name="Ulster")
    final = (new_last.first_name, new_last.last_name, new_last.phone, new_last.role)
    assert final == ("Ursula", "Ulster", "+442071234567", VIEWER)
    assert get_member(idn, org, member.member_id) == new_last
    assert ms(new_last.created_at) == ms(member.created_at)

    missing = I.UpdateMemberRequest(organization_id=org.id, member_id=unique("mem_missing"), first_name="X")
    expect_error(stub.UpdateMember, missing, NOT_FOUND)
    expect_error(stub.DeleteMember, I.DeleteMemberRequest(organization_id=org.id, member_id=unique("mem_missing")), NOT_FOUND)


# --------------------------------------------------------------------------------------------
# 2. Refusals: duplicates, secrets, the last Admin, sessions


def test_inviting_a_member_or_pending_email_is_already_exists_case_insensitively(idn):
    org = create_org(idn)
    stub = idn.stub

    def create(email: str):
        request = I.CreateInviteRequest(organization_id=org.id, email=email, role=VIEWER)
        return stub.CreateInvite(request, metadata=acting(org.admin), timeout=T)

    for email in [org.admin_email, org.admin_email.upper(), "Admin@" + org.domain.upper()]:
        expect_error(stub.CreateInvite, I.CreateInviteRequest(organization_id=org.id, email=email, role=VIEWER), ALREADY_EXISTS)

    first = create(org.email("Pending.Person")).invite
    for email in [org.email("Pending.Person"), org.email("pending.person"), "PENDING.PERSON@" + org.domain.upper()]:
        expect_error(stub.CreateInvite, I.CreateInviteRequest(organization_id=org.id, email=email, role=ADMIN), ALREADY_EXISTS)
    assert [i.invite_id for i in list_invites(idn, org, search_text="pending.person").invites] == [first.invite_id]

    # Once revoked, the email can be invited again.
    stub.RevokeInvite(I.RevokeInviteRequest(organization_id=org.id, invite_id=first.invite_id), timeout=T)
    again = create(org.email("pending.person")).invite
    assert again.invite_id != first.invite_id

    # Once a member is deleted, their email can be invited again.
    gone = add_member(idn, org, org.email("gone"), "Gone", "Member")
    duplicate = I.CreateInviteRequest(organization_id=org.id, email=org.email("GONE"), role=VIEWER)
    expect_error(stub.CreateInvite, duplicate, ALREADY_EXISTS)
    stub.DeleteMember(I.DeleteMemberRequest(organization_id=org.id, member_id=gone.member_id), timeout=T)
    assert create(org.email("gone")).invite.email == org.email("gone")


def test_unknown_secrets_are_unauthenticated_and_used_ones_failed_precondition(idn):
    org = create_org(idn, with_admin=False)
    stub = idn.stub
    for secret in ["not-a-real-secret", "A" * 43, uuid.uuid4().hex]:
        request = I.AcceptInviteRequest(invite_secret=secret, first_name="F", last_name="L", password=PASSWORD)
        expect_error(stub.AcceptInvite, request, UNAUTHENTICATED)
    secret = idn.secret_for(org.admin_email, set())
    accept(idn, secret, "Once", "Only")
    request = I.AcceptInviteRequest(invite_secret=secret, first_name="Twice", last_name="Again", password=PASSWORD)
    expect_error(stub.AcceptInvite, request, FAILED_PRECONDITION)
    assert counts(idn, org) == (1, 1, 0)


def test_last_admin_cannot_be_demoted_or_deleted(idn):
    org = create_org(idn)
    stub = idn.stub
    demote = I.UpdateMemberRequest(organization_id=org.id, member_id=org.admin.member_id, role=VIEWER)
    expect_error(stub.UpdateMember, demote, FAILED_PRECONDITION, metadata=acting(org.admin))
    delete = I.DeleteMemberRequest(organization_id=org.id, member_id=org.admin.member_id)
    expect_error(stub.DeleteMember, delete, FAILED_PRECONDITION)
    assert get_member(idn, org, org.admin.member_id).role == ADMIN
    assert counts(idn, org) == (1, 1, 0)
    # Setting the role it already has is fine.
    keep = I.UpdateMemberRequest(organization_id=org.id, member_id=org.admin.member_id, role=ADMIN)
    assert stub.UpdateMember(keep, timeout=T).member.role == ADMIN

    # With a second Admin the first can be demoted; then the second is the last one.
    second = add_member(idn, org, org.email("second"), "Second", "Admin", role=ADMIN)
    assert stub.UpdateMember(demote, timeout=T).member.role == VIEWER
    assert counts(idn, org) == (2, 1, 1)
    demote_second = I.UpdateMemberRequest(organization_id=org.id, member_id=second.member_id, role=VIEWER)
    expect_error(stub.UpdateMember, demote_second, FAILED_PRECONDITION)
    expect_error(stub.DeleteMember, I.DeleteMemberRequest(organization_id=org.id, member_id=second.member_id), FAILED_PRECONDITION)
    stub.DeleteMember(I.DeleteMemberRequest(organization_id=org.id, member_id=org.admin.member_id), timeout=T)
    assert counts(idn, org) == (1, 1, 0)


def test_concurrent_demotions_and_deletions_keep_one_admin(idn):
    """Two Admins demoted (10 rounds) or deleted at the same time: exactly one change wins."""
    org = create_org(idn)
    second = add_member(idn, org, org.email("second"), "Second", "Admin", role=ADMIN)
    third = add_member(idn, org, org.email("third"), "Third", "Admin", role=VIEWER)
    stub = idn.stub
    pair = [org.admin.member_id, second.member_id]
    for round_number in range(10):
        for member_id in pair:
            stub.UpdateMember(I.UpdateMemberRequest(organization_id=org.id, member_id=member_id, role=ADMIN), timeout=T)
        assert counts(idn, org) == (3, 2, 1)
        futures = [
            stub.UpdateMember.future(I.UpdateMemberRequest(organization_id=org.id, member_id=member_id, role=VIEWER), timeout=T)
            for member_id in pair
        ]
        codes = outcomes(futures)
        assert sorted(codes, key=str) == sorted([OK, FAILED_PRECONDITION], key=str), f"round {round_number}: {codes}"
        assert counts(idn, org) == (3, 1, 2), f"round {round_number}"

    # Promote the third, then delete two Admins at once: one stays.
    for member_id in [*pair, third.member_id]:
        stub.UpdateMember(I.UpdateMemberRequest(organization_id=org.id, member_id=member_id, role=ADMIN), timeout=T)
    stub.UpdateMember(I.UpdateMemberRequest(organization_id=org.id, member_id=third.member_id, role=VIEWER), timeout=T)
    futures = [stub.DeleteMember.future(I.DeleteMemberRequest(organization_id=org.id, member_id=m), timeout=T) for m in pair]
    codes = outcomes(futures)
    assert sorted(codes, key=str) == sorted([OK, FAILED_PRECONDITION], key=str), codes
    assert counts(idn, org) == (2, 1, 1)


def test_login_refusals_look_the_same_and_bad_tokens_are_unauthenticated(idn):
    org = create_org(idn)
    invite(idn, org, org.email("not.yet"), actor=org.admin)
    stub = idn.stub
    def refused(email: str, password: str) -> grpc.RpcError:
        return expect_error(stub.Login, I.LoginRequest(organization_id=org.id, email=email, password=password), UNAUTHENTICATED)

    wrong_password = refused(org.admin_email, "wrong password!")
    unknown_email = refused(org.email("nobody"), PASSWORD)
    invited_only = refused(org.email("not.yet"), PASSWORD)
    assert wrong_password.details() == unknown_email.details() == invited_only.details()
    # Without an organization, the same answer.
    for email, password in ((org.admin_email, "wrong password!"), (org.email("nobody"), PASSWORD), (org.email("not.yet"), PASSWORD)):
        error = expect_error(stub.Login, I.LoginRequest(email=email, password=password), UNAUTHENTICATED)
        assert error.details() == wrong_password.details() == "email or password is incorrect"
    for token in ["not-a-token", "A" * 43]:
        expect_error(stub.Authenticate, I.AuthenticateRequest(session_token=token), UNAUTHENTICATED)
        stub.Logout(I.LogoutRequest(session_token=token), timeout=T)  # idempotent for unknown tokens


# --------------------------------------------------------------------------------------------
# 2b. Signing in without an organization; a person's organizations


def person_in_two_orgs(idn: Identity) -> tuple[Org, Org, list]:
    """Two organizations whose first Admin of the first is also a Viewer of the second; returns
    them and the two organizations in the order a sign-in offers them (by name, then id)."""
    first, second = create_org(idn), create_org(idn)
    add_member(idn, second, first.admin_email.upper(), "Ada", "Twice", role=VIEWER)
    offered = sorted([first, second], key=lambda org: (org.name.lower(), org.id))
    return first, second, offered


def test_login_without_organization_signs_a_member_of_one_in_directly(idn):
    org = create_org(idn)
    response = call_ok(idn.stub.Login, I.LoginRequest(email=org.admin_email.upper(), password=PASSWORD), "login by email")
    assert response.session_token and not response.choice_token and list(response.organization_choices) == []
    assert_principal(response.principal, org.admin)
    assert_principal(authenticate(idn, response.session_token).principal, org.admin)


def test_login_without_organization_offers_a_choice_to_a_member_of_several(fresh_idn):
    """(A server of its own: the refused choices below spend the source address's sign-in budget.)"""
    idn = fresh_idn
    first, second, offered = person_in_two_orgs(idn)
    started = now_ms()
    response = call_ok(idn.stub.Login, I.LoginRequest(email=first.admin_email, password=PASSWORD), "login by email")
    assert response.session_token == "" and not response.HasField("principal") and not response.HasField("expires_at")
    assert len(response.choice_token) >= 32
    assert started + 5 * 60_000 - 2_000 <= ms(response.choice_expires_at) <= now_ms() + 5 * 60_000 + 2_000
    assert [(c.organization_id, c.name) for c in response.organization_choices] == [(o.id, o.name) for o in offered]

    # Another organization, or none, is refused without using the token up.
    stranger = create_org(idn)
    error = expect_error(idn.stub.Login, I.LoginRequest(choice_token=response.choice_token, organization_id=stranger.id),
                         UNAUTHENTICATED, "choice_token")
    assert "is not one of this sign-in's organizations" in error.details()
    expect_error(idn.stub.Login, I.LoginRequest(choice_token=response.choice_token), INVALID_ARGUMENT, "organization_id")

    chosen = call_ok(idn.stub.Login, I.LoginRequest(choice_token=response.choice_token, organization_id=second.id), "choose")
    assert chosen.principal.organization_id == second.id and chosen.principal.role == VIEWER
    assert chosen.principal.email == first.admin_email.upper()
    assert authenticate(idn, chosen.session_token).principal.organization_id == second.id

    # Single use: neither organization opens with it again.
    for org in (first, second):
        error = expect_error(idn.stub.Login, I.LoginRequest(choice_token=response.choice_token, organization_id=org.id),
                             UNAUTHENTICATED, "choice_token")
        assert "already used" in error.details()
    expect_error(idn.stub.Login, I.LoginRequest(choice_token="never-issued", organization_id=first.id), UNAUTHENTICATED, "choice_token")

    # Naming the organization still signs in there directly.
    direct = login(idn, first, first.admin_email)
    assert_principal(direct.principal, first.admin)
    assert not direct.choice_token


def test_list_memberships_names_every_organization_of_the_email(idn):
    first, second, offered = person_in_two_orgs(idn)
    member = first.admin
    response = call_ok(idn.stub.ListMemberships, I.ListMembershipsRequest(organization_id=first.id, member_id=member.member_id),
                       "ListMemberships", metadata=acting(member))
    assert [(m.organization_id, m.organization_name, m.current) for m in response.memberships] == [
        (o.id, o.name, o.id == first.id) for o in offered]
    roles = {m.organization_id: m.role for m in response.memberships}
    assert roles == {first.id: ADMIN, second.id: VIEWER}
    # Only about oneself; a member of another organization is NOT_FOUND.
    expect_error(idn.stub.ListMemberships, I.ListMembershipsRequest(organization_id=first.id, member_id=member.member_id),
                 grpc.StatusCode.PERMISSION_DENIED, "member_id", metadata=acting(second.admin))
    expect_error(idn.stub.ListMemberships, I.ListMembershipsRequest(organization_id=second.id, member_id=member.member_id), NOT_FOUND)


# --------------------------------------------------------------------------------------------
# 3. Resend and revoke


def test_resend_issues_a_new_secret_and_expiry(idn):
    org = create_org(idn)
    stub = idn.stub
    original, old_secret = invite(idn, org, org.email("resend.me"), role=VIEWER, actor=org.admin)
    time.sleep(0.02)
    before = idn.spool()
    resend = I.ResendInviteRequest(organization_id=org.id, invite_id=original.invite_id)
    resent = stub.ResendInvite(resend, metadata=acting(org.admin), timeout=T).invite
    new_secret = idn.secret_for(org.email("resend.me"), before)
    assert new_secret != old_secret
    assert resent.invite_id == original.invite_id
    assert (resent.email, resent.role, resent.status) == (original.email, VIEWER, I.INVITE_STATUS_PENDING)
    assert ms(resent.added_on) > ms(original.added_on)
    assert ms(resent.expires_at) > ms(original.expires_at)
    assert ms(resent.expires_at) - ms(resent.added_on) == INVITE_LIFETIME_MS
    listed = [i for i in list_invites(idn, org).invites if i.invite_id == original.invite_id]
    assert len(listed) == 1 and ms(listed[0].added_on) == ms(resent.added_on)

    request = I.AcceptInviteRequest(invite_secret=old_secret, first_name="Old", last_name="Secret", password=PASSWORD)
    expect_error(stub.AcceptInvite, request, UNAUTHENTICATED)
    member = accept(idn, new_secret, "New", "Secret")
    assert (member.email, member.role) == (org.email("resend.me"), VIEWER)
    assert list_invites(idn, org).total_size == 0
    # An accepted invite is no longer pending: it cannot be resent.
    expect_error_any(stub.ResendInvite, resend, {NOT_FOUND, FAILED_PRECONDITION})


def test_revoke_kills_the_secret_and_removes_the_invite(idn):
    org = create_org(idn)
    stub = idn.stub
    keep, _ = invite(idn, org, org.email("keep"), actor=org.admin)
    revoked, secret = invite(idn, org, org.email("revoke.me"), role=ADMIN, actor=org.admin)
    assert {i.invite_id for i in list_invites(idn, org).invites} == {keep.invite_id, revoked.invite_id}
    revoke = I.RevokeInviteRequest(organization_id=org.id, invite_id=revoked.invite_id)
    stub.RevokeInvite(revoke, metadata=acting(org.admin), timeout=T)
    listed = list_invites(idn, org)
    assert [i.invite_id for i in listed.invites] == [keep.invite_id]
    assert listed.total_size == 1
    request = I.AcceptInviteRequest(invite_secret=secret, first_name="Re", last_name="Voked", password=PASSWORD)
    expect_error(stub.AcceptInvite, request, FAILED_PRECONDITION)
    assert counts(idn, org) == (1, 1, 0)
    # A revoked invite can be neither revoked again nor resent (and resending sends no mail).
    before = idn.spool()
    gone = {NOT_FOUND, FAILED_PRECONDITION}
    expect_error_any(stub.RevokeInvite, revoke, gone)
    expect_error_any(stub.ResendInvite, I.ResendInviteRequest(organization_id=org.id, invite_id=revoked.invite_id), gone)
    assert wait_quiet_then_mails(idn, org.email("revoke.me"), before) == []


# --------------------------------------------------------------------------------------------
# 4. Lists


# (first name, last name, email local part, phone, role); every name and email distinct case-insensitively.
LIST_PEOPLE = [
    ("bob", "Zimmer", "Nobody.bob", "+14155550107", VIEWER),
    ("Carla", "young", "carla_young", "", ADMIN),
    ("dave", "Xu", "ALPHA.dave", "+4930123456", VIEWER),
    ("Erin", "wilson", "erin.w", "+33123456789", VIEWER),
    ("frank", "Vance", "Kilo.frank", "", VIEWER),
    ("Gina", "underwood", "bravo.gina", "+12025550199", ADMIN),
    ("hank", "Turner", "Xray_hank", "+61212345678", VIEWER),
    ("Ivy", "stone", "ivy.stone", "+819012345678", VIEWER),
    ("jack", "Roberts", "Delta.jack", "+5511987654321", VIEWER),
    ("Kara", "quinn", "kara.q", "", VIEWER),
    ("leo", "Park", "Yankee.leo", "+12125550123", VIEWER),
]
MEMBER_COLUMNS = {
    "first_name": lambda m: m.first_name.lower(),
    "last_name": lambda m: m.last_name.lower(),
    "email": lambda m: m.email.lower(),
    "role": lambda m: I.Role.Name(m.role),
    "phone": lambda m: m.phone,
    "created_at": lambda m: (m.created_at.seconds, m.created_at.nanos),
}
SEARCH_FIELDS = {
    I.MEMBER_SEARCH_FIELD_UNSPECIFIED: lambda m: [m.first_name, m.last_name, m.email, m.phone],
    I.MEMBER_SEARCH_FIELD_NAME: lambda m: [m.first_name, m.last_name],
    I.MEMBER_SEARCH_FIELD_FIRST_NAME: lambda m: [m.first_name],
    I.MEMBER_SEARCH_FIELD_LAST_NAME: lambda m: [m.last_name],
    I.MEMBER_SEARCH_FIELD_EMAIL: lambda m: [m.email],
    I.MEMBER_SEARCH_FIELD_PHONE: lambda m: [m.phone],
}
SEARCH_TEXTS = ["AN", "er", "o", "_", "%", "555", "+4", "ALPHA", "Turn", "y.", "nothing-matches"]


def test_list_members_sorting_paging_filters_and_search(idn):
    org = create_org(idn, first="Olga", last="Osborne")
    members = [org.admin]
    invites = [
        (invite(idn, org, org.email(local), role=role, phone=phone, actor=org.admin)[1], first, last)
        for first, last, local, phone, role in LIST_PEOPLE
    ]
    for secret, first, last in invites:
        members.append(accept(idn, secret, first, last))
    by_id = {m.member_id: m for m in members}
    assert len(by_id) == 12
    assert len({ms(m.created_at) for m in members}) == 12, "accepted one after another: distinct created_at"

    def ids(items):
        return [m.member_id for m in items]

    # Sorting: every column both ways, checked against Python's order (case-insensitive names and emails).
    orders = {"": ("last_name", False)}
    for column in MEMBER_COLUMNS:
        orders[column] = (column, False)
        orders[f"{column} asc"] = (column, False)
        orders[f"{column} desc"] = (column, True)
    single_pages = {}
    for order_by, (column, descending) in orders.items():
        response = list_members(idn, org, order_by=order_by)
        key = MEMBER_COLUMNS[column]
        got = list(response.members)
        assert sorted(ids(got)) == sorted(by_id), f"order_by={order_by!r}: not every member exactly once"
        assert response.total_size == 12, order_by
        assert response.next_page_token == "", order_by
        assert [key(m) for m in got] == sorted((key(m) for m in members), reverse=descending), f"order_by={order_by!r}"
        if column in ("first_name", "last_name", "email", "created_at"):  # distinct values: the order is fully determined
            expected = sorted(members, key=key, reverse=descending)
            assert ids(got) == ids(expected), f"order_by={order_by!r}"
        single_pages[order_by] = ids(got)
    assert single_pages["created_at"] == ids(members), "created_at follows the order of acceptance"

    # Paging with page_size=5 in every order (ties included): every member exactly once, in the same order.
    for order_by, expected_ids in single_pages.items():
        paged, responses = list_all(partial(list_members, idn, org), {"order_by": order_by}, 5, "members")
        assert [len(r.members) for r in responses] == [5, 5, 2], f"order_by={order_by!r}"
        assert all(r.total_size == 12 for r in responses), f"order_by={order_by!r}: {[r.total_size for r in responses]}"
        assert ids(paged) == expected_ids, f"order_by={order_by!r}: paging changed the order or lost/duplicated rows"

    # Role filter, alone and with paging.
    for role in (ADMIN, VIEWER):
        expected = {m.member_id for m in members if m.role == role}
        response = list_members(idn, org, role=role)
        assert set(ids(response.members)) == expected and len(response.members) == len(expected), I.Role.Name(role)
        assert response.total_size == len(expected)
        paged, responses = list_all(partial(list_members, idn, org), {"role": role, "order_by": "email desc"}, 2, "members")
        assert ids(paged) == ids(sorted((by_id[i] for i in expected), key=MEMBER_COLUMNS["email"], reverse=True))
        assert all(r.total_size == len(expected) for r in responses)

    # Search by each field (case-insensitive substring; `_` and `%` are literal characters).
    for search_field, values in SEARCH_FIELDS.items():
        for text in SEARCH_TEXTS:
            expected = {m.member_id for m in members if any(text.lower() in v.lower() for v in values(m))}
            response = list_members(idn, org, search_field=search_field, search_text=text)
            label = f"{I.MemberSearchField.Name(search_field)} {text!r}"
            assert set(ids(response.members)) == expected, f"{label}: got {[m.email for m in response.members]}"
            assert len(response.members) == len(expected), label
            assert response.total_size == len(expected), label
    assert {m.email for m in list_members(idn, org, search_field=I.MEMBER_SEARCH_FIELD_EMAIL, search_text="_").members} == {
        org.email("carla_young"),
        org.email("Xray_hank"),
    }
    # Role filter and search together.
    expected = {m.member_id for m in members if m.role == ADMIN and "a" in (m.first_name + " " + m.last_name).lower()}
    response = list_members(idn, org, role=ADMIN, search_field=I.MEMBER_SEARCH_FIELD_NAME, search_text="A")
    assert set(ids(response.members)) == expected and response.total_size == len(expected)

    # Keyset paging stays correct while rows arrive: a member sorting before the cursor is added
    # between pages, and no member is skipped or seen twice.
    first_page = list_members(idn, org, order_by="last_name asc", page_size=5)
    newcomer = add_member(idn, org, org.email("aaron"), "Aaron", "Aardvark")
    rest, _ = list_all(
        lambda **kw: list_members(idn, org, **kw) if kw.get("page_token") else first_page,
        {"order_by": "last_name asc"}, 5, "members",
    )
    seen = ids(rest)
    assert newcomer.member_id not in seen
    assert sorted(seen) == sorted(by_id), "keyset paging lost or repeated a member when a row was added"
    assert seen == single_pages["last_name asc"]


def test_list_members_refuses_invalid_arguments(idn):
    org = create_org(idn)
    add_member(idn, org, org.email("other"), "Other", "Member")
    stub = idn.stub
    token = list_members(idn, org, order_by="email", page_size=1).next_page_token
    assert token, "two members with page_size=1 must give a next page"
    cases = [
        (dict(page_size=501), "page_size"),
        (dict(page_size=-1), "page_size"),
        (dict(order_by="password"), "order_by"),
        (dict(order_by="display_name"), "order_by"),
        (dict(order_by="added_on"), "order_by"),
        (dict(order_by="last_name sideways"), "order_by"),
        (dict(order_by="last_name asc extra"), "order_by"),
        (dict(page_token="not a token!!"), "page_token"),
        (dict(page_token="eyJmb28iOiJiYXIifQ"), "page_token"),  # base64 JSON, but not a token
        (dict(page_token=token[:-3]), "page_token"),
        (dict(page_token=token, order_by="first_name"), "page_token"),
        (dict(page_token=token, order_by="email desc"), "page_token"),
        (dict(page_token=token, order_by="created_at"), "page_token"),
        (dict(search_field=99, search_text="x"), "search_field"),
        (dict(role=9), "role"),
    ]
    for kwargs, field_name in cases:
        expect_error(stub.ListMembers, I.ListMembersRequest(organization_id=org.id, **kwargs), INVALID_ARGUMENT, field_name)
    # The limits themselves are fine, and the token works with its own order_by.
    assert list_members(idn, org, page_size=500).total_size == 2
    assert len(list_members(idn, org, order_by="email", page_token=token).members) == 1


def test_list_invites_pending_only_with_filters_and_sorting(idn):
    org = create_org(idn, with_admin=False)  # the first Admin's invite stays pending
    people = [("Zulu", VIEWER), ("alpha", ADMIN), ("Mike", VIEWER), ("bravo", VIEWER), ("Echo", ADMIN), ("yankee", VIEWER)]
    created = [org.created.first_admin_invite]
    for local, role in people:
        time.sleep(0.005)  # distinct added_on milliseconds
        request = I.CreateInviteRequest(organization_id=org.id, email=org.email(local), role=role)
        created.append(idn.stub.CreateInvite(request, timeout=T).invite)
    time.sleep(0.005)
    _, accepted_secret = invite(idn, org, org.email("accepted"), role=VIEWER)
    revoked, _ = invite(idn, org, org.email("revoked"), role=ADMIN)
    accept(idn, accepted_secret, "Acc", "Epted")
    idn.stub.RevokeInvite(I.RevokeInviteRequest(organization_id=org.id, invite_id=revoked.invite_id), timeout=T)
    by_id = {i.invite_id: i for i in created}

    def ids(items):
        return [i.invite_id for i in items]

    response = list_invites(idn, org)
    assert response.total_size == 7
    newest_first = sorted(created, key=lambda i: ms(i.added_on), reverse=True)
    assert ids(response.invites) == ids(newest_first), "the default order is added_on desc"
    for invite_row in response.invites:
        assert invite_row.status == I.INVITE_STATUS_PENDING
        assert invite_row.invited_by == "system"
        assert invite_row == by_id[invite_row.invite_id]

    keys = {"added_on": lambda i: ms(i.added_on), "email": lambda i: i.email.lower(), "role": lambda i: I.Role.Name(i.role)}
    for column, key in keys.items():
        for direction in ("asc", "desc"):
            order_by = f"{column} {direction}"
            got = list_invites(idn, org, order_by=order_by).invites
            assert sorted(ids(got)) == sorted(by_id), order_by
            assert [key(i) for i in got] == sorted((key(i) for i in created), reverse=direction == "desc"), order_by
            paged, responses = list_all(partial(list_invites, idn, org), {"order_by": order_by}, 2, "invites")
            assert ids(paged) == ids(got), f"{order_by}: paging changed the order or lost/duplicated rows"
            assert [len(r.invites) for r in responses] == [2, 2, 2, 1]
            assert all(r.total_size == 7 for r in responses)

    for role in (ADMIN, VIEWER):
        expected = {i.invite_id for i in created if i.role == role}
        response = list_invites(idn, org, role=role)
        assert set(ids(response.invites)) == expected and response.total_size == len(expected), I.Role.Name(role)
    for text in ["ALPHA", "zu", "E", "admin@", "accepted", "revoked", "nothing-here", "_", "%"]:
        expected = {i.invite_id for i in created if text.lower() in i.email.lower()}
        response = list_invites(idn, org, search_text=text)
        assert set(ids(response.invites)) == expected, f"search {text!r}: got {[i.email for i in response.invites]}"
        assert response.total_size == len(expected), text
    response = list_invites(idn, org, role=ADMIN, search_text="a")
    assert set(ids(response.invites)) == {i.invite_id for i in created if i.role == ADMIN and "a" in i.email.lower()}


def test_list_invites_refuses_invalid_arguments(idn):
    org = create_org(idn, with_admin=False)
    idn.stub.CreateInvite(I.CreateInviteRequest(organization_id=org.id, email=org.email("second"), role=VIEWER), timeout=T)
    token = list_invites(idn, org, order_by="email", page_size=1).next_page_token
    assert token
    for kwargs, field_name in [
        (dict(page_size=501), "page_size"),
        (dict(page_size=-5), "page_size"),
        (dict(order_by="first_name"), "order_by"),
        (dict(order_by="expires_at"), "order_by"),
        (dict(order_by="email upward"), "order_by"),
        (dict(page_token="%%%"), "page_token"),
        (dict(page_token=token, order_by="added_on"), "page_token"),
        (dict(page_token=token, order_by="email desc"), "page_token"),
        (dict(role=9), "role"),
    ]:
        expect_error(idn.stub.ListInvites, I.ListInvitesRequest(organization_id=org.id, **kwargs), INVALID_ARGUMENT, field_name)
    assert list_invites(idn, org, page_size=500).total_size == 2
    assert len(list_invites(idn, org, order_by="email", page_token=token).invites) == 1


# --------------------------------------------------------------------------------------------
# 5. Tenant isolation


def test_another_organizations_ids_are_not_found(idn):
    org_a = create_org(idn)
    member_a = add_member(idn, org_a, org_a.email("member.a"), "Mem", "Ber", phone="+14155550100")
    invite_a, secret_a = invite(idn, org_a, org_a.email("pending.a"), actor=org_a.admin)
    org_b = create_org(idn)
    stub = idn.stub
    b_meta = acting(org_b.admin)

    def not_found_like_missing(method, make_request, real_id):
        """NOT_FOUND for A's id from B, answered exactly like an id that does not exist."""
        missing_id = real_id[:4] + uuid.uuid4().hex
        real = expect_error(method, make_request(real_id), NOT_FOUND, metadata=b_meta)
        missing = expect_error(method, make_request(missing_id), NOT_FOUND, metadata=b_meta)
        assert real.details().replace(real_id, "<id>") == missing.details().replace(missing_id, "<id>")

    before = idn.spool()
    b = org_b.id
    not_found_like_missing(stub.GetMember, lambda i: I.GetMemberRequest(organization_id=b, member_id=i), member_a.member_id)
    not_found_like_missing(
        stub.UpdateMember,
        lambda i: I.UpdateMemberRequest(organization_id=b, member_id=i, first_name="Hijacked", role=ADMIN),
        member_a.member_id,
    )
    not_found_like_missing(stub.DeleteMember, lambda i: I.DeleteMemberRequest(organization_id=b, member_id=i), member_a.member_id)
    not_found_like_missing(stub.ResendInvite, lambda i: I.ResendInviteRequest(organization_id=b, invite_id=i), invite_a.invite_id)
    not_found_like_missing(stub.RevokeInvite, lambda i: I.RevokeInviteRequest(organization_id=b, invite_id=i), invite_a.invite_id)
    not_found_like_missing(stub.DeleteMember, lambda i: I.DeleteMemberRequest(organization_id=b, member_id=i), org_a.admin.member_id)

    # B's lists, counts and logins see nothing of A.
    assert [m.member_id for m in list_members(idn, org_b).members] == [org_b.admin.member_id]
    assert list_members(idn, org_b, search_text="member.a").total_size == 0
    assert list_invites(idn, org_b).total_size == 0
    assert counts(idn, org_b) == (1, 1, 0)
    expect_error(stub.Login, I.LoginRequest(organization_id=org_b.id, email=member_a.email, password=PASSWORD), UNAUTHENTICATED)
    # An email is unique per organization only: B may invite A's member.
    same_email = I.CreateInviteRequest(organization_id=org_b.id, email=member_a.email, role=VIEWER)
    assert call_ok(stub.CreateInvite, same_email, "B inviting A's member", metadata=b_meta).invite.email == member_a.email

    # A is untouched: the member, the pending invite and its (not resent) secret.
    assert get_member(idn, org_a, member_a.member_id) == member_a
    assert [i.invite_id for i in list_invites(idn, org_a).invites] == [invite_a.invite_id]
    assert counts(idn, org_a) == (2, 1, 1)
    assert support.invite_mails(idn.data_dir, invite_a.email, before) == [], "B's ResendInvite must not mail A's invitee"
    assert accept(idn, secret_a, "Pen", "Ding").organization_id == org_a.id
    assert counts(idn, org_a) == (3, 1, 2)


# --------------------------------------------------------------------------------------------
# 6. Concurrency


@pytest.mark.parametrize("mixed_case", [False, True], ids=["same-email", "mixed-case"])
def test_fifty_concurrent_invites_for_one_email_make_one_invite(idn, mixed_case):
    org = create_org(idn, with_admin=False)
    email = org.email("race.winner")
    variants = [email.upper() if mixed_case and n % 2 else email for n in range(50)]
    before = idn.spool()
    requests = [I.CreateInviteRequest(organization_id=org.id, email=v, role=VIEWER) for v in variants]
    futures = [idn.stub.CreateInvite.future(request, timeout=T) for request in requests]
    codes = outcomes(futures)
    unexpected = [(n, c.name, futures[n].exception().details()) for n, c in enumerate(codes) if c not in (OK, ALREADY_EXISTS)]
    assert not unexpected, f"unexpected outcomes: {unexpected[:5]}"
    assert codes.count(OK) == 1, f"{codes.count(OK)} succeeded, expected exactly 1"
    assert codes.count(ALREADY_EXISTS) == 49
    listed = list_invites(idn, org, search_text="race.winner")
    assert len(listed.invites) == 1 and listed.total_size == 1, [i.email for i in listed.invites]
    winner = futures[codes.index(OK)].result().invite
    assert listed.invites[0].invite_id == winner.invite_id
    # One mail, and its secret belongs to the one invite.
    secret = idn.secret_for(email, before)
    assert len(wait_quiet_then_mails(idn, email, before)) == 1
    assert accept(idn, secret, "Race", "Winner").email.lower() == email.lower()


# --------------------------------------------------------------------------------------------
# 7. Idempotent CreateOrganization


def test_create_organization_is_idempotent_by_key(idn):
    stub = idn.stub
    key = unique("idem-")
    domain = f"{unique('idem')}.example.com"
    first_email, other_email = f"first@{domain}", f"other@{domain}"
    request = I.CreateOrganizationRequest(name="Idempotent Org", first_admin_email=first_email, idempotency_key=key)
    before = idn.spool()
    first = stub.CreateOrganization(request, timeout=T)
    retry = stub.CreateOrganization(request, timeout=T)
    assert retry.organization == first.organization
    assert retry.first_admin_invite.invite_id == first.first_admin_invite.invite_id
    assert ms(retry.first_admin_invite.added_on) == ms(first.first_admin_invite.added_on)
    # Same key, different content: refused naming the key (a key stands for one whole request), nothing new.
    for name, email in (("Another Name", first_email), ("Idempotent Org", other_email)):
        with pytest.raises(grpc.RpcError) as changed:
            stub.CreateOrganization(I.CreateOrganizationRequest(name=name, first_admin_email=email, idempotency_key=key), timeout=T)
        assert changed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert changed.value.details().startswith("idempotency_key: was already used for a different organization"), changed.value.details()
    # The email compares ignoring case, as emails do.
    assert stub.CreateOrganization(I.CreateOrganizationRequest(
        name="Idempotent Org", first_admin_email=first_email.upper(), idempotency_key=key), timeout=T).organization == first.organization
    # Concurrent retries: all the same organization.
    futures = [stub.CreateOrganization.future(request, timeout=T) for _ in range(10)]
    assert outcomes(futures) == [OK] * 10, [f.exception() and f.exception().details() for f in futures]
    assert {f.result().organization.organization_id for f in futures} == {first.organization.organization_id}

    org = Org(first.organization.organization_id, "Idempotent Org", domain, first_email, first)
    assert list_invites(idn, org).total_size == 1
    secret = idn.secret_for(first_email, before)
    assert len(wait_quiet_then_mails(idn, first_email, before)) == 1, "retries must not mail again"
    assert support.invite_mails(idn.data_dir, other_email, before) == []

    # A different key makes a different organization, even with the same name and email.
    other_key = I.CreateOrganizationRequest(name="Idempotent Org", first_admin_email=first_email, idempotency_key=unique("idem-"))
    other = stub.CreateOrganization(other_key, timeout=T)
    assert other.organization.organization_id != first.organization.organization_id

    # The first mail's secret still works; a retry after acceptance still returns the first result.
    admin = accept(idn, secret, "First", "Admin")
    assert admin.organization_id == org.id
    after_accept = call_ok(stub.CreateOrganization, request, "a retry after the first Admin accepted")
    assert after_accept.organization == first.organization
    assert after_accept.first_admin_invite.invite_id == first.first_admin_invite.invite_id
    assert counts(idn, org) == (1, 1, 0)
    assert list_invites(idn, org).total_size == 0, "the retry must not re-create the accepted invite"


# --------------------------------------------------------------------------------------------
# 8. Login rate limiting (servers of their own, last in the module)


def test_failed_logins_are_limited_per_account(fresh_idn):
    """10 failures spend the account's budget; the 11th attempt is refused; 5 per minute come back."""
    org = create_org(fresh_idn)
    stub = fresh_idn.stub
    wrong = I.LoginRequest(organization_id=org.id, email=org.admin_email, password="wrong password!")
    for attempt in range(10):
        expect_error(stub.Login, wrong, UNAUTHENTICATED)
    expect_error(stub.Login, wrong, RESOURCE_EXHAUSTED)
    # Refused before the password is checked: the right password is refused too.
    right = I.LoginRequest(organization_id=org.id, email=org.admin_email.upper(), password=PASSWORD)
    expect_error(stub.Login, right, RESOURCE_EXHAUSTED)
    # The budget refills at 5 per minute: one attempt is back after 12 s (of the service's clock).
    support.advance_clock(fresh_idn.admin_port, 10)
    expect_error(stub.Login, right, RESOURCE_EXHAUSTED)
    support.advance_clock(fresh_idn.admin_port, 2.1)
    assert call_ok(stub.Login, right, "login 12 s after the budget ran out").principal.member_id == org.admin.member_id
    expect_error(stub.Login, wrong, UNAUTHENTICATED)
    expect_error(stub.Login, wrong, RESOURCE_EXHAUSTED)


def test_failed_logins_without_organization_are_limited(fresh_idn):
    """Signing in by email alone spends the same budgets: the 11th failure is refused before any
    password is checked, the right password too."""
    org = create_org(fresh_idn)
    stub = fresh_idn.stub
    wrong = I.LoginRequest(email=org.admin_email, password="wrong password!")
    for attempt in range(10):
        expect_error(stub.Login, wrong, UNAUTHENTICATED)
    expect_error(stub.Login, wrong, RESOURCE_EXHAUSTED)
    expect_error(stub.Login, I.LoginRequest(email=org.admin_email, password=PASSWORD), RESOURCE_EXHAUSTED)


def test_failed_logins_are_limited_per_source_address(fresh_idn):
    """10 failures on 10 different accounts from one address spend the address's budget."""
    org = create_org(fresh_idn)
    stub = fresh_idn.stub
    for attempt in range(10):
        request = I.LoginRequest(organization_id=org.id, email=org.email(f"nobody{attempt}"), password=PASSWORD)
        expect_error(stub.Login, request, UNAUTHENTICATED)
    another = I.LoginRequest(organization_id=org.id, email=org.email("nobody-else"), password=PASSWORD)
    expect_error(stub.Login, another, RESOURCE_EXHAUSTED)
    # The Admin's account never failed, but this address is out of budget.
    expect_error(stub.Login, I.LoginRequest(organization_id=org.id, email=org.admin_email, password=PASSWORD), RESOURCE_EXHAUSTED)
