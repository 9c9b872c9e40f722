"""Invite mail over SMTP: `portal identity --smtp` against a real SMTP server (aiosmtpd) on loopback."""

import re
import time
import uuid

import grpc
import pytest
from aiosmtpd.controller import Controller

import support

T = 10


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):
        text = envelope.content.decode("utf-8", errors="replace")
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), text))
        return "250 Message accepted for delivery"

    def secret_for(self, email: str) -> str | None:
        for _, recipients, text in reversed(self.messages):
            if email in recipients:
                match = re.search(r"Invite code: (\S+)", text)
                return match.group(1) if match else None
        return None


def start_smtp(port: int) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


def identity_with_smtp(start_server, portal_bin, smtp_port: int, tmp_path):
    port = support.free_port()
    data_dir = tmp_path / f"identity-{uuid.uuid4().hex[:8]}"
    server = start_server(
        [portal_bin, "identity", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
         "--smtp", f"127.0.0.1:{smtp_port}"],
        name="identity-smtp",
    )
    return server, support.make_channel(server.port)


def create_organization(stub, pb, email: str):
    return stub.CreateOrganization(
        pb.identity.CreateOrganizationRequest(name="Mail Co", first_admin_email=email, idempotency_key=uuid.uuid4().hex),
        timeout=T,
    )


def test_invite_mail_is_sent_over_smtp_and_its_secret_works(start_server, portal_bin, pb, tmp_path):
    """An invite arrives at the SMTP server addressed to the invitee; its code accepts the invite."""
    smtp_port = support.free_port()
    controller, inbox = start_smtp(smtp_port)
    try:
        server, channel = identity_with_smtp(start_server, portal_bin, smtp_port, tmp_path)
        stub = pb.identity_grpc.IdentityServiceStub(channel)
        created = create_organization(stub, pb, "first.admin@example.com")
        support.wait_until(lambda: inbox.secret_for("first.admin@example.com"), timeout=10)
        mail_from, recipients, text = inbox.messages[-1]
        assert mail_from == "no-reply@portal.invalid"
        assert recipients == ["first.admin@example.com"]
        assert "Subject: You are invited to Mail Co" in text
        member = stub.AcceptInvite(
            pb.identity.AcceptInviteRequest(
                invite_secret=inbox.secret_for("first.admin@example.com"), first_name="First", last_name="Admin",
                password="a long enough password"),
            timeout=T,
        ).member
        assert member.organization_id == created.organization.organization_id
        assert member.role == pb.identity.ROLE_ADMIN
    finally:
        controller.stop()


def test_mail_queued_while_smtp_is_down_is_sent_once_it_returns(start_server, portal_bin, pb, tmp_path):
    """Nothing is lost while the SMTP server is unreachable: the outbox keeps the mail and retries."""
    smtp_port = support.free_port()
    server, channel = identity_with_smtp(start_server, portal_bin, smtp_port, tmp_path)
    stub = pb.identity_grpc.IdentityServiceStub(channel)
    emails = [f"late{i}@example.com" for i in range(3)]
    for email in emails:
        create_organization(stub, pb, email)
    time.sleep(1.5)  # the mailer tries and fails at least once
    controller, inbox = start_smtp(smtp_port)
    try:
        support.wait_until(lambda: all(inbox.secret_for(email) for email in emails), timeout=30)
        time.sleep(1.0)  # a duplicate can only be waited for; the relay would resend at once, not after a second
        delivered = [recipient for _, recipients, _ in inbox.messages for recipient in recipients]
        assert sorted(delivered) == sorted(emails), "each queued invite is delivered exactly once"
    finally:
        controller.stop()
