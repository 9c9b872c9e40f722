"""Expiry notices across real processes: entitlements (on a clock the test moves) records the notices
due 30, 7 and 1 days before an entitlement with unactivated licenses expires and when it expires;
identity mails them to every Admin of the organization (the mail spool); each goes out once, also
across a restart of entitlements, and each is an audit event."""

import time

from google.protobuf.timestamp_pb2 import Timestamp

import support
from test_audit_delivery import ADMIN, FixedPortServer, T, new_organization

DAY = 86_400


def admins_mails(identity_data, emails, subject_words: str) -> dict[str, int]:
    """How many spooled mails to each address have `subject_words` in their subject."""
    counts = {email: 0 for email in emails}
    for name in support.spool_files(identity_data):
        mail = support.read_mail(support.mail_spool(identity_data) / name)
        to = mail.to.strip("<>").lower()
        if to in counts and subject_words in mail.headers.get("subject", ""):
            counts[to] += 1
    return counts


def notice_bodies(identity_data, subject_words: str) -> list[str]:
    bodies = []
    for name in sorted(support.spool_files(identity_data)):
        mail = support.read_mail(support.mail_spool(identity_data) / name)
        if subject_words in mail.headers.get("subject", ""):
            bodies.append(mail.body)
    return bodies


def test_admins_are_mailed_30_7_1_days_before_and_when_unactivated_licenses_expire_once_each(portal_bin, pb, tmp_path):
    ports = [support.free_port() for _ in range(3)]
    clock_args, admin_port = support.testing_clock_args()
    audit = FixedPortServer([portal_bin, "audit", "--data-dir", str(tmp_path / "audit")], "audit", tmp_path, ports[0])
    identity_data = tmp_path / "identity"
    identity = FixedPortServer([portal_bin, "identity", "--data-dir", str(identity_data), "--audit-address",
                                f"127.0.0.1:{ports[0]}"], "identity", tmp_path, ports[1])
    entitlements = FixedPortServer(
        [portal_bin, "entitlements", "--data-dir", str(tmp_path / "entitlements"), "--audit-address", f"127.0.0.1:{ports[0]}",
         "--identity-address", f"127.0.0.1:{ports[1]}", *clock_args], "entitlements", tmp_path, ports[2])
    servers = [audit, identity, entitlements]
    for server in servers:
        server.start()
    try:
        identity_stub = pb.identity_grpc.IdentityServiceStub(support.make_channel(identity.port))
        entitlements_stub = pb.entitlements_grpc.EntitlementsServiceStub(support.make_channel(entitlements.port))
        audit_stub = pb.audit_grpc.AuditServiceStub(support.make_channel(audit.port))
        organization_id = new_organization(identity_stub, pb)  # its first Admin: admin@example.com
        before = support.spool_files(identity_data)
        secret = support.wait_for_invite_secret(identity_data, "admin@example.com")
        identity_stub.AcceptInvite(pb.identity.AcceptInviteRequest(
            invite_secret=secret, first_name="Ada", last_name="Admin", password="correct horse battery"), timeout=T)
        for email, role in [("second@example.com", pb.identity.ROLE_ADMIN), ("viewer@example.com", pb.identity.ROLE_VIEWER)]:
            identity_stub.CreateInvite(pb.identity.CreateInviteRequest(organization_id=organization_id, email=email, role=role),
                                       metadata=ADMIN, timeout=T)
            code = support.wait_for_invite_secret(identity_data, email, before)
            identity_stub.AcceptInvite(pb.identity.AcceptInviteRequest(
                invite_secret=code, first_name="Sam", last_name=email.split("@")[0].title(), password="correct horse battery"),
                timeout=T)
        admins, everyone = ["admin@example.com", "second@example.com"], ["admin@example.com", "second@example.com", "viewer@example.com"]

        for product_id, name in [("P-NEXUS", "Nexus Core"), ("P-ORBIT", "Orbit Mixer")]:
            entitlements_stub.UpsertProduct(pb.entitlements.UpsertProductRequest(product=pb.entitlements.Product(
                product_id=product_id, name=name, license_type="Subscription")), timeout=T)
        entitlements_stub.TransferEntitlement(pb.entitlements.TransferEntitlementRequest(
            entitlement_id="ENT-EXPIRING", organization_id=organization_id, sales_order="SO-77",
            order_date=Timestamp(seconds=int(time.time()) - DAY),
            expiration_date=Timestamp(seconds=int(time.time()) + 31 * DAY),
            lines=[pb.entitlements.TransferLine(product_id="P-NEXUS", quantity=100),
                   pb.entitlements.TransferLine(product_id="P-ORBIT", quantity=10)]), timeout=T)
        entitlements_stub.TransferEntitlement(pb.entitlements.TransferEntitlementRequest(  # all activated: no notice
            entitlement_id="ENT-USED", organization_id=organization_id, sales_order="SO-78",
            order_date=Timestamp(seconds=int(time.time()) - DAY), expiration_date=Timestamp(seconds=int(time.time()) + 31 * DAY),
            lines=[pb.entitlements.TransferLine(product_id="P-ORBIT", quantity=5)]), timeout=T)
        for entitlement_id, product_id, quantity in [("ENT-EXPIRING", "P-NEXUS", 40), ("ENT-USED", "P-ORBIT", 5)]:
            entitlements_stub.Activate(pb.entitlements.ActivateRequest(
                organization_id=organization_id, entitlement_id=entitlement_id, product_id=product_id, quantity=quantity,
                project_name="Apollo", project_manager="Grace Hopper", idempotency_key=f"{entitlement_id}-activation"),
                metadata=ADMIN, timeout=T)

        def expect(subject_words: str, total_notices: int):
            assert support.wait_until(lambda: admins_mails(identity_data, everyone, subject_words) == {
                "admin@example.com": 1, "second@example.com": 1, "viewer@example.com": 0}, timeout=30), (
                subject_words, admins_mails(identity_data, everyone, subject_words))
            notices = [e for e in audit_stub.ListEvents(pb.audit.ListEventsRequest(
                organization_id=organization_id, page_size=100), timeout=T).events
                if e.action == pb.audit.EVENT_ACTION_EXPIRY_NOTICE_SENT]
            assert support.wait_until(lambda: len([e for e in audit_stub.ListEvents(pb.audit.ListEventsRequest(
                organization_id=organization_id, page_size=100), timeout=T).events
                if e.action == pb.audit.EVENT_ACTION_EXPIRY_NOTICE_SENT]) == total_notices, timeout=20), notices
            assert all(e.subject_id == "ENT-EXPIRING" for e in notices)

        time.sleep(2)  # a minute's sweep has run at the real time: nothing is due 31 days ahead
        assert not notice_bodies(identity_data, "ENT-EXPIRING")
        support.advance_clock(admin_port, 2 * DAY)  # 29 days left
        expect("expires in 30 days", 1)
        body = notice_bodies(identity_data, "expires in 30 days")[0]
        assert "Nexus Core (P-NEXUS): 60 of 100 not activated" in body and "Orbit Mixer (P-ORBIT): 10 of 10 not activated" in body
        assert "SO-77" in body and not notice_bodies(identity_data, "ENT-USED")

        support.advance_clock(admin_port, 22 * DAY)  # 7 days left
        expect("expires in 7 days", 2)
        entitlements.stop()  # its clock starts again at the real time: 31 days left, both notices sent already
        entitlements.start()
        time.sleep(2)
        expect("expires in 30 days", 2)  # still once each
        support.advance_clock(admin_port, 30 * DAY + DAY // 2)  # half a day left
        expect("expires tomorrow", 3)
        support.advance_clock(admin_port, DAY)
        expect("expired on", 4)
        assert "can no longer be" in notice_bodies(identity_data, "expired on")[0]
        time.sleep(2)
        for words in ("expires in 30 days", "expires in 7 days", "expires tomorrow", "expired on"):
            assert admins_mails(identity_data, everyone, words) == {
                "admin@example.com": 1, "second@example.com": 1, "viewer@example.com": 0}, words
    finally:
        for server in reversed(servers):
            try:
                server.stop()
            finally:
                server.kill()
