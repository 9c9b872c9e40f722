"""The audit event stream with grpcio: WatchEvents on the audit service across its restarts (stopped,
and killed with SIGKILL) while identity keeps recording changes, and WatchAuditEvents through the
gateway for Admins, ended when the member is no longer one."""

import json
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

import support
import test_gateway
from test_audit_delivery import new_organization, stack, stubs  # noqa: F401  (the relaying stack fixture)
from test_gateway import G, I, T, bearer, refused, unique

ADMIN = [("x-portal-member-id", "mem_admin"), ("x-portal-display-name", "Ada Lovelace")]


class Follower:
    """Follows an organization's stream as an integration would: reconnects with the last cursor
    after each interruption and records every event once, in order."""

    def __init__(self, audit_stub, pb, organization_id: str):
        self.audit_stub, self.pb, self.organization_id = audit_stub, pb, organization_id
        self.cursor = "0"
        self.events = []
        self.endings = []  # (status code, seconds from the interruption's start to the stream's end)
        self.interrupted_at = None

    def follow(self, until_count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < until_count and time.monotonic() < deadline:
            try:
                stream = self.audit_stub.WatchEvents(self.pb.audit.WatchEventsRequest(
                    organization_id=self.organization_id, cursor=self.cursor, heartbeat_seconds=1),
                    timeout=max(1.0, deadline - time.monotonic()))
                for message in stream:
                    if not message.heartbeat:
                        self.events.append(message.event)
                    self.cursor = message.cursor
                    if len(self.events) >= until_count:
                        stream.cancel()
                        return
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.CANCELLED:
                    return
                started = self.interrupted_at or time.monotonic()
                self.endings.append((error.code(), time.monotonic() - started))
                time.sleep(0.2)  # the service is restarting: try again


def test_a_follower_resuming_with_its_cursor_misses_and_repeats_nothing_across_restarts(stack, pb):  # noqa: F811
    """While identity records 400 member changes, the audit service is stopped (SIGTERM) and later
    killed (SIGKILL) and started again each time; a follower reconnecting with its last cursor gets
    every event exactly once, in sequence order. SIGTERM ends its stream at once with UNAVAILABLE."""
    audit, identity, _ = stack
    identity_stub, audit_stub = stubs(pb, identity, audit)
    organization_id = new_organization(identity_stub, pb)
    follower = Follower(audit_stub, pb, organization_id)
    total = 1 + 400  # the first Admin's invite, then the invites below
    following = threading.Thread(target=follower.follow, args=(total, 180))
    following.start()

    def invite(first: int, count: int) -> None:
        for i in range(first, first + count):
            identity_stub.CreateInvite(pb.identity.CreateInviteRequest(
                organization_id=organization_id, email=f"follow{i}@example.com", role=pb.identity.ROLE_VIEWER),
                metadata=ADMIN, timeout=60)

    invite(0, 100)
    assert support.wait_until(lambda: len(follower.events) >= 51, timeout=60)
    follower.interrupted_at = time.monotonic()
    audit.stop()  # graceful: streams end first, with UNAVAILABLE
    invite(100, 100)  # recorded in identity's outbox meanwhile
    audit.start()
    assert support.wait_until(lambda: len(follower.events) >= 151, timeout=60)
    invite(200, 100)
    follower.interrupted_at = time.monotonic()
    audit.kill9()
    invite(300, 100)
    audit.start()
    following.join(timeout=200)
    assert not following.is_alive()

    sequences = [event.sequence for event in follower.events]
    assert sequences == list(range(1, total + 1)), "gaps or repeats in the followed stream"
    assert len({event.event_id for event in follower.events}) == total
    assert sorted(e.message for e in follower.events if e.user != "system") == sorted(
        f"Invited follow{i}@example.com as Viewer" for i in range(400))
    assert follower.endings and follower.endings[0][0] == grpc.StatusCode.UNAVAILABLE, follower.endings
    assert follower.endings[0][1] < 5.0, f"the stream outlived SIGTERM by {follower.endings[0][1]:.1f} s"


@pytest.fixture(scope="module")
def gateway_stack(portal_bin, tmp_path_factory):
    """Audit, identity, entitlements and a gateway, started once for the module."""
    stack = test_gateway.Stack(portal_bin, tmp_path_factory.mktemp("event-stream-stack"))
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_admins_follow_changes_live_through_the_gateway_until_they_are_no_longer_admins(gateway_stack):
    """An Admin's stream from now shows the member changes made meanwhile (filtered to MEMBERS) and
    heartbeats; a Viewer is refused; once the Admin is made a Viewer their stream ends with
    PERMISSION_DENIED, and a signed-out session's with UNAUTHENTICATED."""
    s = gateway_stack
    (org,) = s.create_orgs(("Wanda", "Watcher"))
    other_admin, viewer = s.add_members(org, ("Otto", "Other", I.ROLE_ADMIN), ("Vic", "Viewer", I.ROLE_VIEWER))
    token, other_token, viewer_token = s.login(org.admin), s.login(other_admin), s.login(viewer)

    refused(lambda: list(s.portal.WatchAuditEvents(G.WatchAuditEventsRequest(), metadata=bearer(viewer_token), timeout=T)),
            grpc.StatusCode.PERMISSION_DENIED)
    message = refused(lambda: list(s.portal.WatchAuditEvents(
        G.WatchAuditEventsRequest(heartbeat_seconds=31), metadata=bearer(token), timeout=T)), grpc.StatusCode.INVALID_ARGUMENT)
    assert message.startswith("heartbeat_seconds")

    stream = s.portal.WatchAuditEvents(
        G.WatchAuditEventsRequest(event_types=[test_gateway.A.EVENT_TYPE_MEMBERS], heartbeat_seconds=1),
        metadata=bearer(token), timeout=60)
    received = []

    def read() -> None:
        try:
            for message in stream:
                received.append(message)
        except grpc.RpcError as error:
            received.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    email = f"live.{unique()}@{org.domain}"
    s.as_(other_token, "InviteMember", G.InviteMemberRequest(email=email, role=I.ROLE_VIEWER))
    assert support.wait_until(lambda: any(not isinstance(m, Exception) and not m.heartbeat for m in received), timeout=20)
    events = [m.event for m in received if not isinstance(m, Exception) and not m.heartbeat]
    assert [e.message for e in events] == [f"Invited {email} as Viewer"]
    assert events[0].organization_id == org.id and events[0].user == "Otto Other"
    assert support.wait_until(lambda: any(not isinstance(m, Exception) and m.heartbeat for m in received[1:]), timeout=10)

    s.as_(other_token, "UpdateMember", G.UpdateMemberRequest(member_id=org.admin.member_id, role=I.ROLE_VIEWER))
    reader.join(timeout=15)
    assert not reader.is_alive(), "the stream outlived the member's Admin role"
    assert isinstance(received[-1], grpc.RpcError) and received[-1].code() == grpc.StatusCode.PERMISSION_DENIED

    # A session that ends mid-stream ends the stream.
    stream = s.portal.WatchAuditEvents(G.WatchAuditEventsRequest(heartbeat_seconds=1), metadata=bearer(other_token), timeout=60)
    first = next(iter(stream))
    assert first.heartbeat
    s.as_(other_token, "Logout", G.LogoutRequest())
    ended = refused(lambda: [m for m in stream], grpc.StatusCode.UNAUTHENTICATED)
    assert ended


def test_portalctl_events_follows_and_resumes_from_its_cursor_file(gateway_stack, portal_bin, tmp_path):
    """`portalctl events --follow --json --cursor-file F` prints each change as one JSON line as it
    is recorded and keeps the cursor in F; a later `portalctl events --cursor-file F` prints only what
    was recorded since, then stops."""
    s = gateway_stack
    (org,) = s.create_orgs(("Cora", "Cursor"))
    portalctl = [str(Path(portal_bin).parent / "portalctl")]
    common = ["--gateway", s.gateway_server.address, "--session", str(tmp_path / "session")]
    environment = {"PATH": "/usr/bin:/bin"}
    login = subprocess.run(portalctl + ["login", "--org", org.id, "--email", org.admin.email, "--password", org.admin.password]
                           + common, capture_output=True, text=True, timeout=60, env=environment)
    assert login.returncode == 0, login.stderr
    count = lambda: s.audit.ListEvents(test_gateway.A.ListEventsRequest(organization_id=org.id), timeout=T).total_size
    assert support.wait_until(lambda: count() >= 2, timeout=20)  # the first Admin invited, and joined
    recorded = count()
    cursor_file = tmp_path / "cursor"
    follower = subprocess.Popen(portalctl + ["events", "--follow", "--json", "--cursor", "0", "--cursor-file", str(cursor_file)]
                                + common, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        past = [json.loads(follower.stdout.readline()) for _ in range(recorded)]
        assert [line["cursor"] for line in past] == [str(n) for n in range(1, recorded + 1)]
        assert past[0]["type"] == "MEMBERS" and past[0]["message"] == f"Invited {org.admin.email} as Admin", past[0]
        token = s.login(org.admin)
        email = f"followed.{unique()}@{org.domain}"
        s.as_(token, "InviteMember", G.InviteMemberRequest(email=email, role=I.ROLE_VIEWER))
        live = json.loads(follower.stdout.readline())
        assert live["message"] == f"Invited {email} as Viewer" and live["cursor"] == str(recorded + 1), live
        assert support.wait_until(lambda: cursor_file.read_text().strip() == str(recorded + 1), timeout=10)
    finally:
        follower.terminate()
        follower.wait(timeout=10)

    later = f"later.{unique()}@{org.domain}"
    s.as_(token, "InviteMember", G.InviteMemberRequest(email=later, role=I.ROLE_VIEWER))
    assert support.wait_until(lambda: count() == recorded + 2, timeout=20)
    resumed = subprocess.run(portalctl + ["events", "--cursor-file", str(cursor_file)] + common,
                             capture_output=True, text=True, timeout=60, env=environment)
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"Invited {later} as Viewer"), resumed.stdout
    assert cursor_file.read_text().strip() == str(recorded + 2)
