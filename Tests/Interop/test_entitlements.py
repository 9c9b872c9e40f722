"""The entitlements service over real gRPC: catalog and transfer rules, activations that never
over-activate (also under concurrency and across kill -9), idempotency, the licensing lists with
their sorting, paging, filters and tenant isolation, and the activations CSV export.

Most tests share one module-scoped `portal entitlements` server and keep apart by using fresh
organization, product and entitlement ids; the kill -9 test runs a server of its own.
"""

from __future__ import annotations

import calendar
import datetime
import threading
import time
import uuid

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import support
from test_audit_delivery import FixedPortServer

T = 10
ADMIN = [("x-portal-member-id", "mem_ada"), ("x-portal-display-name", "Ada Lovelace")]
CSV_HEADER = "Activation Date,Product Name,Quantity,Project Name,Project Manager,Activated By,Entitlement ID,Serial Number\r\n"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

INVALID = grpc.StatusCode.INVALID_ARGUMENT
FAILED = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND


# --------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def server(portal_bin, tmp_path_factory):
    """One entitlements service shared by the tests of this module (each uses its own ids)."""
    workdir = tmp_path_factory.mktemp("entitlements")
    process = support.ServerProcess(
        [portal_bin, "entitlements", "--data-dir", str(workdir / "ent"), "--audit-address", "127.0.0.1:1"], "entitlements", workdir)
    process.start()
    yield process
    try:
        process.stop()
    finally:
        process.kill()


@pytest.fixture(scope="module")
def stub(server, pb):
    channel = support.make_channel(server.port)
    yield pb.entitlements_grpc.EntitlementsServiceStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def E(pb):
    """The entitlements protobuf module."""
    return pb.entitlements


def uid() -> str:
    return uuid.uuid4().hex[:10].upper()


def new_org() -> str:
    return f"org_{uuid.uuid4().hex}"


def ts(year: int, month: int = 1, day: int = 1) -> Timestamp:
    return Timestamp(seconds=calendar.timegm((year, month, day, 0, 0, 0)))


def ms(timestamp: Timestamp) -> int:
    return timestamp.seconds * 1000 + timestamp.nanos // 1_000_000


def refused(call, code, field: str | None = None, starts: bool = False) -> str:
    """Runs `call`, asserts it fails with `code` and (when given) a message naming `field`."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = info.value
    details = error.details() or ""
    assert error.code() == code, f"expected {code} naming {field!r}, got {error.code()}: {details}"
    if field is not None:
        if starts:
            assert details.startswith(field), f"{code} message should start with {field!r}: {details!r}"
        else:
            assert field in details, f"{code} message should name {field!r}: {details!r}"
    return details


def upsert(stub, E, product_id, name, license_type="Subscription", description="", deployment="Cloud"):
    return stub.UpsertProduct(E.UpsertProductRequest(product=E.Product(
        product_id=product_id, name=name, license_type=license_type, product_description=description, deployment_type=deployment)), timeout=T)


def transfer(stub, E, entitlement_id, org, lines, sales_order="SO-1", po="", order=None, expiration=None):
    request = E.TransferEntitlementRequest(
        entitlement_id=entitlement_id, organization_id=org, sales_order=sales_order, po_number=po, order_date=order or ts(2026, 1, 5),
        lines=[E.TransferLine(product_id=p, quantity=q) for p, q in lines])
    if expiration is not None:
        request.expiration_date.CopyFrom(expiration)
    return stub.TransferEntitlement(request, timeout=T)


def activation_request(E, org, entitlement_id, product_id, quantity=1, key=None, project="Project", manager="Grace Hopper", serial=""):
    return E.ActivateRequest(
        organization_id=org, entitlement_id=entitlement_id, product_id=product_id, quantity=quantity, project_name=project,
        project_manager=manager, serial_number=serial, idempotency_key=key or uuid.uuid4().hex)


def activate(stub, E, org, entitlement_id, product_id, quantity=1, key=None, metadata=ADMIN, **fields):
    return stub.Activate(activation_request(E, org, entitlement_id, product_id, quantity, key, **fields), metadata=metadata, timeout=T).activation


def summary(stub, E, org, limit=0):
    return stub.GetSummary(E.GetSummaryRequest(organization_id=org, recent_activations_limit=limit), timeout=T)


def collect(call, request, items: str, page_size: int) -> list:
    """Every item of a list, paging with `page_size`."""
    request.page_size = page_size
    out, tokens = [], set()
    while True:
        page = call(request, timeout=T)
        out += list(getattr(page, items))
        if not page.next_page_token:
            return out
        assert len(getattr(page, items)) == page_size
        assert page.next_page_token not in tokens, (
            f"endless paging: next_page_token repeats after {len(out)} items {[getattr(x, 'project_name', '') for x in out[-4:]]}")
        tokens.add(page.next_page_token)
        request.page_token = page.next_page_token


def all_activations(stub, E, org, **filters) -> list:
    return collect(stub.ListActivations, E.ListActivationsRequest(organization_id=org, **filters), "activations", 500)


def csv_export(stub, E, org, **fields) -> str:
    chunks = [response.chunk for response in stub.ExportActivationsCsv(E.ExportActivationsCsvRequest(organization_id=org, **fields), timeout=T)]
    return b"".join(chunks).decode("utf-8")


def csv_time(timestamp: Timestamp, offset_hours: int = 0) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp.seconds, datetime.timezone.utc) + datetime.timedelta(hours=offset_hours)
    return f'"{moment.day:02d} {MONTHS[moment.month - 1]} {moment.year}, {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"'


# --------------------------------------------------------------------------------------------
# 1. Rules and refusals


def test_upsert_product_creates_replaces_and_refuses_missing_fields(stub, E):
    """UpsertProduct reports created on the first call, replaces on the second, and refuses a missing
    product, product id, name or license type with INVALID_ARGUMENT naming the field."""
    pid = f"P-{uid()}"
    first = upsert(stub, E, pid, "Nexus Core", "Subscription", "Core engine", "On-premises")
    assert first.created is True
    assert (first.product.product_id, first.product.name, first.product.license_type) == (pid, "Nexus Core", "Subscription")
    second = upsert(stub, E, pid, "Nexus Core 2", "Perpetual", "Core engine v2", "Cloud")
    assert second.created is False
    assert (second.product.name, second.product.license_type, second.product.product_description, second.product.deployment_type) == (
        "Nexus Core 2", "Perpetual", "Core engine v2", "Cloud")
    org = new_org()
    transfer(stub, E, f"E-{uid()}", org, [(pid, 3)])
    held = stub.GetProduct(E.GetProductRequest(organization_id=org, product_id=pid), timeout=T).product.product
    assert (held.name, held.license_type, held.product_description, held.deployment_type) == (
        "Nexus Core 2", "Perpetual", "Core engine v2", "Cloud")

    refused(lambda: stub.UpsertProduct(E.UpsertProductRequest(), timeout=T), INVALID, "product")
    refused(lambda: upsert(stub, E, "", "Name"), INVALID, "product.product_id")
    refused(lambda: upsert(stub, E, f"P-{uid()}", ""), INVALID, "product.name")
    refused(lambda: upsert(stub, E, f"P-{uid()}", "   "), INVALID, "product.name")
    refused(lambda: upsert(stub, E, f"P-{uid()}", "Name", license_type=""), INVALID, "product.license_type")


def test_transfer_validation_refusals(stub, E):
    """TransferEntitlement refuses missing ids, sales order and order date, an expiration not after the
    order date, no lines, bad quantities and duplicate products (INVALID_ARGUMENT naming the field),
    and products not in the catalog (FAILED_PRECONDITION naming `lines`); nothing is stored."""
    pid, pid2 = f"P-{uid()}", f"P-{uid()}"
    upsert(stub, E, pid, "Refusal Amp")
    upsert(stub, E, pid2, "Refusal Mixer")
    org = new_org()
    eid = f"E-{uid()}"
    refused(lambda: transfer(stub, E, "", org, [(pid, 1)]), INVALID, "entitlement_id")
    refused(lambda: transfer(stub, E, eid, "", [(pid, 1)]), INVALID, "organization_id")
    refused(lambda: transfer(stub, E, eid, org, [(pid, 1)], sales_order=""), INVALID, "sales_order")
    refused(lambda: stub.TransferEntitlement(E.TransferEntitlementRequest(
        entitlement_id=eid, organization_id=org, sales_order="SO", lines=[E.TransferLine(product_id=pid, quantity=1)]), timeout=T),
        INVALID, "order_date")
    refused(lambda: transfer(stub, E, eid, org, [(pid, 1)], order=ts(2026, 2, 1), expiration=ts(2026, 2, 1)), INVALID, "expiration_date")
    refused(lambda: transfer(stub, E, eid, org, [(pid, 1)], order=ts(2026, 2, 1), expiration=ts(2026, 1, 1)), INVALID, "expiration_date")
    refused(lambda: transfer(stub, E, eid, org, []), INVALID, "lines")
    refused(lambda: transfer(stub, E, eid, org, [(pid, 0)]), INVALID, "lines[0].quantity")
    refused(lambda: transfer(stub, E, eid, org, [(pid, -5)]), INVALID, "lines[0].quantity")
    refused(lambda: transfer(stub, E, eid, org, [(pid2, 1), (pid, 1_000_000_001)]), INVALID, "lines[1].quantity")
    refused(lambda: transfer(stub, E, eid, org, [(pid, 1), (pid2, 2), (pid, 3)]), INVALID, "lines[2].product_id")
    refused(lambda: transfer(stub, E, eid, org, [(pid, 1), ("", 2)]), INVALID, "lines[1].product_id")
    refused(lambda: transfer(stub, E, eid, org, [(pid, 1), (f"P-UNKNOWN-{uid()}", 2)]), FAILED, "lines", starts=True)
    refused(lambda: stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=eid), timeout=T), NOT_FOUND)
    assert summary(stub, E, org).available_licenses == 0
    # The largest quantity is accepted.
    big = transfer(stub, E, eid, org, [(pid, 1_000_000_000)])
    assert big.created and big.entitlement.total_available_licenses == 1_000_000_000


def test_transfer_stores_the_entitlement_with_product_cards_and_is_idempotent(stub, E):
    """A transfer stores the entitlement (lines as product cards ordered by product name, totals,
    ACTIVE, no expiration when perpetual); repeating it returns created=false and changes nothing."""
    base = uid()
    zulu, alpha = f"P-{base}-Z", f"P-{base}-A"
    upsert(stub, E, zulu, "Zulu Processor", "Perpetual", "DSP engine", "On-premises")
    upsert(stub, E, alpha, "Alpha Amplifier", "Subscription", "Power amplifier", "Cloud")
    org, eid = new_org(), f"E-{base}"
    first = transfer(stub, E, eid, org, [(zulu, 7), (alpha, 3)], sales_order="SO-77", po="PO-9", order=ts(2026, 1, 10))
    assert first.created is True
    ent = first.entitlement
    assert (ent.entitlement_id, ent.organization_id, ent.sales_order, ent.po_number) == (eid, org, "SO-77", "PO-9")
    assert ms(ent.order_date) == ms(ts(2026, 1, 10))
    assert not ent.HasField("expiration_date")
    assert ent.status == E.ENTITLEMENT_STATUS_ACTIVE
    assert (ent.total_available_licenses, ent.total_activated_licenses, ent.total_unactivated_licenses) == (10, 0, 10)
    assert abs(ms(ent.transferred_at) - time.time() * 1000) < 60_000
    cards = [(l.product_id, l.product_name, l.product_description, l.deployment_type, l.license_type,
              l.available_licenses, l.activated_licenses, l.unactivated_licenses) for l in ent.lines]
    expected_cards = [
        (alpha, "Alpha Amplifier", "Power amplifier", "Cloud", "Subscription", 3, 0, 3),
        (zulu, "Zulu Processor", "DSP engine", "On-premises", "Perpetual", 7, 0, 7),
    ]
    assert sorted(cards) == sorted(expected_cards)

    again = transfer(stub, E, eid, org, [(zulu, 7), (alpha, 3)], sales_order="SO-77", po="PO-9", order=ts(2026, 1, 10))
    assert again.created is False
    assert again.entitlement.entitlement_id == eid and again.entitlement.total_available_licenses == 10
    got = stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=eid), timeout=T).entitlement
    assert got.total_available_licenses == 10 and got.sales_order == "SO-77"
    assert summary(stub, E, org).available_licenses == 10
    # Checked last so the rest is verified even when this fails.
    for entitlement in (ent, got):
        names = [l.product_name for l in entitlement.lines]
        assert names == ["Alpha Amplifier", "Zulu Processor"], (
            f"Entitlement.lines must be ordered by product name (proto: 'Product lines, ordered by product name'); got {names}")


def test_transfer_repeat_can_only_raise_quantities(stub, E):
    """A repeated transfer that raises line quantities adds them; any other change (organization,
    sales order, PO, dates, product set, a lower quantity) is FAILED_PRECONDITION starting with the
    field name, and leaves the entitlement unchanged."""
    base = uid()
    p1, p2, p3 = f"P-{base}-1", f"P-{base}-2", f"P-{base}-3"
    for pid, name in ((p1, "Raise One"), (p2, "Raise Two"), (p3, "Raise Three")):
        upsert(stub, E, pid, name)
    org, eid = new_org(), f"E-{base}"
    original = dict(sales_order="SO-1", po="PO-1", order=ts(2026, 1, 1), expiration=ts(2099, 1, 1))
    transfer(stub, E, eid, org, [(p1, 5), (p2, 5)], **original)
    activate(stub, E, org, eid, p1, 2)

    raised = transfer(stub, E, eid, org, [(p2, 5), (p1, 8)], **original)
    assert raised.created is False
    lines = {l.product_id: l for l in raised.entitlement.lines}
    assert (lines[p1].available_licenses, lines[p1].activated_licenses, lines[p1].unactivated_licenses) == (8, 2, 6)
    assert lines[p2].available_licenses == 5
    assert raised.entitlement.total_available_licenses == 13

    def change(**overrides):
        args = dict(original, lines=[(p1, 8), (p2, 5)], org=org)
        args.update(overrides)
        lines_ = args.pop("lines")
        org_ = args.pop("org")
        return lambda: transfer(stub, E, eid, org_, lines_, **args)

    refused(change(org=new_org()), FAILED, "organization_id", starts=True)
    refused(change(sales_order="SO-2"), FAILED, "sales_order", starts=True)
    refused(change(po="PO-2"), FAILED, "po_number", starts=True)
    refused(change(order=ts(2026, 1, 2)), FAILED, "order_date", starts=True)
    refused(change(expiration=ts(2099, 1, 2)), FAILED, "expiration_date", starts=True)
    refused(lambda: transfer(stub, E, eid, org, [(p1, 8), (p2, 5)], sales_order="SO-1", po="PO-1", order=ts(2026, 1, 1)),
            FAILED, "expiration_date", starts=True)
    refused(change(lines=[(p1, 8)]), FAILED, "lines", starts=True)
    refused(change(lines=[(p1, 8), (p2, 5), (p3, 1)]), FAILED, "lines", starts=True)
    refused(change(lines=[(p1, 8), (p3, 5)]), FAILED, "lines", starts=True)
    refused(change(lines=[(p1, 7), (p2, 9)]), FAILED, "lines", starts=True)

    got = stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=eid), timeout=T).entitlement
    assert {l.product_id: l.available_licenses for l in got.lines} == {p1: 8, p2: 5}
    assert (got.sales_order, got.po_number, ms(got.expiration_date)) == ("SO-1", "PO-1", ms(ts(2099, 1, 1)))
    assert summary(stub, E, org).available_licenses == 13


def test_activate_records_the_activation_with_its_actor(stub, E):
    """Activate returns the activation with every field; the acting member comes from the metadata
    (display name and member id), or is "system" without metadata; counts move everywhere."""
    base = uid()
    pid = f"P-{base}"
    upsert(stub, E, pid, "Actor Amp")
    org, eid = new_org(), f"E-{base}"
    transfer(stub, E, eid, org, [(pid, 10)])
    before = time.time() * 1000
    a = activate(stub, E, org, eid, pid, 3, project="  Main Hall  ", manager="Grace Hopper", serial="SN-1")
    after = time.time() * 1000
    assert a.activation_id
    assert (a.organization_id, a.entitlement_id, a.product_id, a.product_name, a.quantity) == (org, eid, pid, "Actor Amp", 3)
    assert (a.project_name, a.project_manager, a.serial_number) == ("Main Hall", "Grace Hopper", "SN-1")
    assert (a.activated_by, a.activated_by_member_id) == ("Ada Lovelace", "mem_ada")
    assert before - 5000 <= ms(a.activation_date) <= after + 5000

    b = activate(stub, E, org, eid, pid, 1, metadata=None, project="Lobby")
    assert b.activated_by == "system" and b.serial_number == ""
    c = activate(stub, E, org, eid, pid, 1, metadata=[("x-portal-member-id", "mem_bob"), ("x-portal-display-name", "Bob Builder")])
    assert (c.activated_by, c.activated_by_member_id) == ("Bob Builder", "mem_bob")

    s = summary(stub, E, org, 10)
    assert (s.available_licenses, s.activated_licenses, s.unactivated_licenses) == (10, 5, 5)
    assert [x.activation_id for x in s.recent_activations] == [c.activation_id, b.activation_id, a.activation_id]
    line = stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=eid), timeout=T).entitlement.lines[0]
    assert (line.available_licenses, line.activated_licenses, line.unactivated_licenses) == (10, 5, 5)
    listed = {x.activation_id: x for x in all_activations(stub, E, org)}
    assert listed[a.activation_id] == a


def test_activate_refusals(stub, E):
    """Activate refuses bad arguments (INVALID_ARGUMENT naming the field), more than is unactivated and
    expired entitlements (FAILED_PRECONDITION), and unknown or foreign entitlements and products not on
    the entitlement (NOT_FOUND); none of them activates anything."""
    base = uid()
    pid, other_pid = f"P-{base}-A", f"P-{base}-B"
    upsert(stub, E, pid, "Nexus Core")
    upsert(stub, E, other_pid, "Other Thing")
    org, eid, expired_eid = new_org(), f"E-{base}", f"E-{base}-OLD"
    transfer(stub, E, eid, org, [(pid, 10)])
    transfer(stub, E, expired_eid, org, [(pid, 4)], order=ts(2020, 1, 1), expiration=ts(2021, 1, 1))
    activate(stub, E, org, eid, pid, 7)

    def call(**overrides):
        fields = dict(organization_id=org, entitlement_id=eid, product_id=pid, quantity=1, project_name="P", project_manager="M",
                      idempotency_key=uuid.uuid4().hex)
        fields.update(overrides)
        return lambda: stub.Activate(E.ActivateRequest(**fields), metadata=ADMIN, timeout=T)

    refused(call(organization_id=""), INVALID, "organization_id")
    refused(call(entitlement_id=""), INVALID, "entitlement_id")
    refused(call(product_id=""), INVALID, "product_id")
    refused(call(quantity=0), INVALID, "quantity")
    refused(call(quantity=-3), INVALID, "quantity")
    refused(call(project_name=""), INVALID, "project_name")
    refused(call(project_name="   "), INVALID, "project_name")
    refused(call(project_manager=""), INVALID, "project_manager")
    refused(call(idempotency_key=""), INVALID, "idempotency_key")

    message = refused(call(quantity=4), FAILED)
    assert "4 requested but only 3 of 10 licenses of Nexus Core are unactivated on entitlement " + eid in message, message
    message = refused(call(entitlement_id=expired_eid), FAILED)
    assert "expired" in message.lower(), message
    refused(call(entitlement_id=f"E-NOPE-{base}"), NOT_FOUND)
    refused(call(product_id=other_pid), NOT_FOUND)
    refused(call(product_id=f"P-NOPE-{base}"), NOT_FOUND)
    refused(call(organization_id=new_org()), NOT_FOUND)

    s = summary(stub, E, org)
    assert (s.available_licenses, s.activated_licenses) == (14, 7)
    assert len(all_activations(stub, E, org)) == 1
    # The refused requests did not use up anything: the last 3 can still be taken.
    activate(stub, E, org, eid, pid, 3)
    refused(call(quantity=1), FAILED, "0 of 10")


def test_activate_idempotency_key_reuse(stub, E):
    """A retry with the same key returns the first activation (same activation_id) and activates nothing
    more; reusing the key for another entitlement, product or quantity is INVALID_ARGUMENT naming
    `idempotency_key`; keys are per organization."""
    base = uid()
    p1, p2 = f"P-{base}-1", f"P-{base}-2"
    upsert(stub, E, p1, "Idem One")
    upsert(stub, E, p2, "Idem Two")
    org, e1, e2 = new_org(), f"E-{base}-1", f"E-{base}-2"
    transfer(stub, E, e1, org, [(p1, 10), (p2, 10)])
    transfer(stub, E, e2, org, [(p1, 10)])
    key = f"key-{base}"
    first = activate(stub, E, org, e1, p1, 2, key=key, project="Alpha")
    retry = activate(stub, E, org, e1, p1, 2, key=key, project="Alpha")
    assert retry.activation_id == first.activation_id
    assert retry == first
    assert summary(stub, E, org).activated_licenses == 2

    refused(lambda: activate(stub, E, org, e1, p1, 3, key=key, project="Alpha"), INVALID, "idempotency_key")
    refused(lambda: activate(stub, E, org, e1, p2, 2, key=key, project="Alpha"), INVALID, "idempotency_key")
    refused(lambda: activate(stub, E, org, e2, p1, 2, key=key, project="Alpha"), INVALID, "idempotency_key")
    assert summary(stub, E, org).activated_licenses == 2
    assert [a.activation_id for a in all_activations(stub, E, org)] == [first.activation_id]

    # The same key in another organization is a different activation.
    org2, e3 = new_org(), f"E-{base}-3"
    transfer(stub, E, e3, org2, [(p1, 5)])
    other = activate(stub, E, org2, e3, p1, 2, key=key)
    assert other.activation_id != first.activation_id
    assert summary(stub, E, org2).activated_licenses == 2
    assert summary(stub, E, org).activated_licenses == 2


def test_get_product_get_entitlement_and_summary_rules(stub, E):
    """GetProduct returns the held product with every entitlement including it (newest order first,
    with counts, status and expiration); products not held and other organizations' entitlements are
    NOT_FOUND; GetSummary returns totals and the N newest activations (limit 0..100)."""
    base = uid()
    pid, lone = f"P-{base}", f"P-{base}-LONE"
    upsert(stub, E, pid, "Summary Amp", "Subscription", "Amp", "Cloud")
    upsert(stub, E, lone, "Lonely Product")
    org, other = new_org(), new_org()
    old, new, expired = f"E-{base}-OLD", f"E-{base}-NEW", f"E-{base}-EXP"
    transfer(stub, E, old, org, [(pid, 5)], sales_order="SO-OLD", po="PO-OLD", order=ts(2025, 3, 1))
    transfer(stub, E, new, org, [(pid, 7)], sales_order="SO-NEW", order=ts(2026, 3, 1), expiration=ts(2099, 1, 1))
    transfer(stub, E, expired, org, [(pid, 2)], sales_order="SO-EXP", order=ts(2020, 1, 1), expiration=ts(2021, 1, 1))
    transfer(stub, E, f"E-{base}-OTHER", other, [(lone, 3), (pid, 100)])
    made = []
    for i in range(4):
        made.append(activate(stub, E, org, old if i % 2 else new, pid, 1, project=f"S{i}"))
        time.sleep(0.003)

    got = stub.GetProduct(E.GetProductRequest(organization_id=org, product_id=pid), timeout=T)
    assert (got.product.product.product_id, got.product.product.name) == (pid, "Summary Amp")
    assert (got.product.available_licenses, got.product.activated_licenses, got.product.unactivated_licenses) == (14, 4, 10)
    rows = [(e.entitlement_id, ms(e.order_date), e.sales_order, e.po_number, e.available_licenses, e.activated_licenses,
             e.unactivated_licenses, e.status, e.HasField("expiration_date")) for e in got.entitlements]
    assert rows == [
        (new, ms(ts(2026, 3, 1)), "SO-NEW", "", 7, 2, 5, E.ENTITLEMENT_STATUS_ACTIVE, True),
        (old, ms(ts(2025, 3, 1)), "SO-OLD", "PO-OLD", 5, 2, 3, E.ENTITLEMENT_STATUS_ACTIVE, False),
        (expired, ms(ts(2020, 1, 1)), "SO-EXP", "", 2, 0, 2, E.ENTITLEMENT_STATUS_EXPIRED, True),
    ]
    assert ms(got.entitlements[0].expiration_date) == ms(ts(2099, 1, 1))

    refused(lambda: stub.GetProduct(E.GetProductRequest(organization_id=org, product_id=lone), timeout=T), NOT_FOUND)
    refused(lambda: stub.GetProduct(E.GetProductRequest(organization_id=org, product_id=f"P-NONE-{base}"), timeout=T), NOT_FOUND)
    refused(lambda: stub.GetProduct(E.GetProductRequest(organization_id="", product_id=pid), timeout=T), INVALID, "organization_id")
    refused(lambda: stub.GetProduct(E.GetProductRequest(organization_id=org, product_id=""), timeout=T), INVALID, "product_id")
    refused(lambda: stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=f"E-{base}-OTHER"), timeout=T), NOT_FOUND)
    refused(lambda: stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=f"E-NONE-{base}"), timeout=T), NOT_FOUND)
    refused(lambda: stub.GetEntitlement(E.GetEntitlementRequest(organization_id="", entitlement_id=old), timeout=T), INVALID, "organization_id")
    refused(lambda: stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=""), timeout=T), INVALID, "entitlement_id")
    exp = stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=expired), timeout=T).entitlement
    assert exp.status == E.ENTITLEMENT_STATUS_EXPIRED

    s = summary(stub, E, org, 3)
    assert (s.available_licenses, s.activated_licenses, s.unactivated_licenses) == (14, 4, 10)
    assert [a.activation_id for a in s.recent_activations] == [a.activation_id for a in reversed(made)][:3]
    assert list(summary(stub, E, org, 0).recent_activations) == []
    assert len(summary(stub, E, org, 100).recent_activations) == 4
    refused(lambda: summary(stub, E, org, 101), INVALID, "recent_activations_limit")
    refused(lambda: summary(stub, E, org, -1), INVALID, "recent_activations_limit")
    refused(lambda: summary(stub, E, "", 1), INVALID, "organization_id")
    empty = summary(stub, E, new_org(), 5)
    assert (empty.available_licenses, empty.activated_licenses, empty.unactivated_licenses, len(empty.recent_activations)) == (0, 0, 0, 0)


def test_list_argument_refusals(stub, E):
    """Every list (and the export) refuses an empty organization, page_size over 500 or negative, an
    unknown order_by column or direction, malformed or mismatched page tokens and empty date ranges,
    with INVALID_ARGUMENT naming the field."""
    org = new_org()
    lists = [
        (stub.ListProducts, E.ListProductsRequest, "product_name"),
        (stub.ListEntitlements, E.ListEntitlementsRequest, "order_date"),
        (stub.ListActivations, E.ListActivationsRequest, "activation_date"),
    ]
    for call, request, column in lists:
        refused(lambda: call(request(organization_id=""), timeout=T), INVALID, "organization_id")
        refused(lambda: call(request(organization_id=org, page_size=501), timeout=T), INVALID, "page_size")
        refused(lambda: call(request(organization_id=org, page_size=-1), timeout=T), INVALID, "page_size")
        call(request(organization_id=org, page_size=500), timeout=T)
        refused(lambda: call(request(organization_id=org, order_by="bogus"), timeout=T), INVALID, "order_by")
        refused(lambda: call(request(organization_id=org, order_by=f"{column} sideways"), timeout=T), INVALID, "order_by")
        refused(lambda: call(request(organization_id=org, order_by=f"{column} asc extra"), timeout=T), INVALID, "order_by")
        call(request(organization_id=org, order_by=f"{column} desc"), timeout=T)
        refused(lambda: call(request(organization_id=org, page_token="!!not a token!!"), timeout=T), INVALID, "page_token")
        refused(lambda: call(request(organization_id=org, page_token="eyJmb28iOjF9"), timeout=T), INVALID, "page_token")

    # Equal bounds select nothing; an end before the start is refused.
    assert stub.ListEntitlements(E.ListEntitlementsRequest(
        organization_id=org, order_date_start=ts(2026, 2, 1), order_date_end=ts(2026, 2, 1)), timeout=T).total_size == 0
    refused(lambda: stub.ListEntitlements(E.ListEntitlementsRequest(
        organization_id=org, order_date_start=ts(2026, 2, 1), order_date_end=ts(2026, 1, 1)), timeout=T), INVALID, "order_date_end")
    refused(lambda: stub.ListEntitlements(E.ListEntitlementsRequest(
        organization_id=org, expiration_date_start=ts(2026, 2, 1), expiration_date_end=ts(2025, 1, 1)), timeout=T),
        INVALID, "expiration_date_end")
    refused(lambda: stub.ListEntitlements(E.ListEntitlementsRequest(organization_id=org, search_field=99), timeout=T), INVALID, "search_field")
    assert stub.ListActivations(E.ListActivationsRequest(
        organization_id=org, activation_date_start=ts(2026, 2, 1), activation_date_end=ts(2026, 2, 1)), timeout=T).total_size == 0
    refused(lambda: csv_export(stub, E, ""), INVALID, "organization_id")
    refused(lambda: csv_export(stub, E, org, order_by="bogus"), INVALID, "order_by")
    refused(lambda: csv_export(stub, E, org, activation_date_start=ts(2026, 2, 1), activation_date_end=ts(2026, 1, 1)),
            INVALID, "activation_date_end")
    refused(lambda: csv_export(stub, E, org, time_zone="Mars/Olympus_Mons"), INVALID, "time_zone")


def test_page_token_issued_for_another_order_is_refused(stub, E):
    """A page token is bound to its order_by: using it with another order is INVALID_ARGUMENT page_token."""
    base = uid()
    pid = f"P-{base}"
    upsert(stub, E, pid, "Token Amp")
    org, eid = new_org(), f"E-{base}"
    transfer(stub, E, eid, org, [(pid, 10)])
    for i in range(3):
        activate(stub, E, org, eid, pid, 1, project=f"T{i}")
    page = stub.ListActivations(E.ListActivationsRequest(organization_id=org, page_size=1, order_by="project_name asc"), timeout=T)
    assert page.next_page_token
    refused(lambda: stub.ListActivations(E.ListActivationsRequest(
        organization_id=org, page_size=1, order_by="quantity asc", page_token=page.next_page_token), timeout=T), INVALID, "page_token")
    refused(lambda: stub.ListActivations(E.ListActivationsRequest(
        organization_id=org, page_size=1, order_by="project_name desc", page_token=page.next_page_token), timeout=T), INVALID, "page_token")


# --------------------------------------------------------------------------------------------
# 2 and 3. Concurrency and idempotency


def test_two_hundred_concurrent_activations_never_over_activate(stub, E):
    """200 parallel single-license activations (distinct keys) against a line of 50: exactly 50 succeed,
    150 are FAILED_PRECONDITION, and every view shows 50 activated."""
    base = uid()
    pid = f"P-{base}"
    upsert(stub, E, pid, "Race Amp")
    org, eid = new_org(), f"E-{base}"
    transfer(stub, E, eid, org, [(pid, 50)])
    futures = [stub.Activate.future(activation_request(E, org, eid, pid, 1, key=f"race-{i}", project=f"Race {i}"), metadata=ADMIN, timeout=60)
               for i in range(200)]
    ok, failed, other = [], [], []
    for future in futures:
        try:
            ok.append(future.result())
        except grpc.RpcError as error:
            (failed if error.code() == FAILED else other).append((error.code(), error.details()))
    assert other == [], f"unexpected failures: {other[:5]}"
    assert (len(ok), len(failed)) == (50, 150)
    assert len({r.activation.activation_id for r in ok}) == 50
    s = summary(stub, E, org)
    assert (s.available_licenses, s.activated_licenses, s.unactivated_licenses) == (50, 50, 0)
    assert stub.ListActivations(E.ListActivationsRequest(organization_id=org, page_size=1), timeout=T).total_size == 50
    line = stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=eid), timeout=T).entitlement.lines[0]
    assert (line.activated_licenses, line.unactivated_licenses) == (50, 0)


def test_twenty_parallel_calls_with_one_key_activate_once(stub, E):
    """20 parallel Activate calls with one idempotency key all return the same activation, and the
    quantity is activated once."""
    base = uid()
    pid = f"P-{base}"
    upsert(stub, E, pid, "Retry Amp")
    org, eid = new_org(), f"E-{base}"
    transfer(stub, E, eid, org, [(pid, 100)])
    request = activation_request(E, org, eid, pid, 3, key=f"one-key-{base}", project="Retry")
    futures = [stub.Activate.future(request, metadata=ADMIN, timeout=60) for _ in range(20)]
    results, errors = [], []
    for future in futures:
        try:
            results.append(future.result().activation)
        except grpc.RpcError as error:
            errors.append((error.code(), error.details()))
    assert errors == [], f"parallel retries failed: {errors[:5]}"
    assert len({a.activation_id for a in results}) == 1
    assert summary(stub, E, org).activated_licenses == 3
    assert [a.activation_id for a in all_activations(stub, E, org)] == [results[0].activation_id]
    # A later retry still returns it.
    assert stub.Activate(request, metadata=ADMIN, timeout=T).activation.activation_id == results[0].activation_id
    assert summary(stub, E, org).activated_licenses == 3


# --------------------------------------------------------------------------------------------
# 4. kill -9 during activations


def test_kill_9_during_activations_keeps_every_acknowledged_activation(portal_bin, pb, tmp_path):
    """kill -9 the service while 300 activations run from 6 threads; after a restart on the same port
    and data every acknowledged activation is stored, the activated counts equal the stored activations,
    and retrying every key afterwards ends with exactly 300 activated."""
    E = pb.entitlements
    server = FixedPortServer([portal_bin, "entitlements", "--data-dir", str(tmp_path / "ent"), "--audit-address", "127.0.0.1:1"],
                             "killed-entitlements", tmp_path, support.free_port())
    server.start()
    try:
        channel = support.make_channel(server.port)
        stub = pb.entitlements_grpc.EntitlementsServiceStub(channel)
        base = uid()
        pid, org, eid = f"P-{base}", new_org(), f"E-{base}"
        upsert(stub, E, pid, "Crash Amp")
        transfer(stub, E, eid, org, [(pid, 1000)])

        acknowledged: dict[str, str] = {}
        lock = threading.Lock()
        enough = threading.Event()
        keys = [f"crash-{i}" for i in range(300)]

        def worker(offset: int) -> None:
            for key in keys[offset::6]:
                try:
                    response = stub.Activate(activation_request(E, org, eid, pid, 1, key=key, project=key), metadata=ADMIN, timeout=5)
                except grpc.RpcError:
                    continue
                with lock:
                    acknowledged[key] = response.activation.activation_id
                    if len(acknowledged) >= 150:
                        enough.set()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        assert enough.wait(60), f"only {len(acknowledged)} activations acknowledged"
        server.kill9()
        for thread in threads:
            thread.join(60)
        with lock:
            acked = dict(acknowledged)
        assert 150 <= len(acked) < 300, len(acked)
        channel.close()

        server.start()
        channel = support.make_channel(server.port)
        stub = pb.entitlements_grpc.EntitlementsServiceStub(channel)
        stored = all_activations(stub, E, org)
        stored_ids = {a.activation_id for a in stored}
        assert len(stored_ids) == len(stored)
        missing = set(acked.values()) - stored_ids
        assert not missing, f"{len(missing)} acknowledged activations lost after kill -9"
        s = summary(stub, E, org)
        assert s.activated_licenses >= len(acked)
        assert s.activated_licenses == len(stored) == sum(a.quantity for a in stored)
        line = stub.GetEntitlement(E.GetEntitlementRequest(organization_id=org, entitlement_id=eid), timeout=T).entitlement.lines[0]
        assert line.activated_licenses == len(stored)
        assert stub.ListActivations(E.ListActivationsRequest(organization_id=org, page_size=1), timeout=T).total_size == len(stored)

        # Retrying every key (as a client would) converges on exactly one activation per key.
        for key in keys:
            response = stub.Activate(activation_request(E, org, eid, pid, 1, key=key, project=key), metadata=ADMIN, timeout=T)
            if key in acked:
                assert response.activation.activation_id == acked[key]
        assert summary(stub, E, org).activated_licenses == 300
        assert len(all_activations(stub, E, org)) == 300
        channel.close()
    finally:
        try:
            server.stop()
        finally:
            server.kill()


# --------------------------------------------------------------------------------------------
# 5. Lists


@pytest.fixture(scope="module")
def catalog(stub, E):
    """An organization holding four products with distinct values in every column, and its
    activations; plus a second organization whose data must never show."""
    base = uid()
    org, intruder = new_org(), new_org()
    specs = [  # suffix, name, license type, description, deployment, available, activated
        ("C", "charlie Mixer", "Subscription", "mixing desk", "Cloud", 10, 1),
        ("A", "Bravo Amp", "perpetual", "Amplifier unit", "on-premises", 20, 5),
        ("D", "alpha Speaker", "Trial", "zone speaker", "Hybrid", 30, 2),
        ("B", "delta Camera", "evaluation", "PTZ camera", "edge", 40, 35),
    ]
    products = {}
    for suffix, name, license_type, description, deployment, available, _ in specs:
        pid = f"P-{base}-{suffix}"
        upsert(stub, E, pid, name, license_type, description, deployment)
        products[pid] = dict(name=name, license_type=license_type, product_description=description, deployment_type=deployment)
    eids = []
    for index, (suffix, _, _, _, _, available, activated) in enumerate(specs):
        pid = f"P-{base}-{suffix}"
        # Split each product over two entitlements so the figures are sums.
        first, second = f"E-{base}-{suffix}1", f"E-{base}-{suffix}2"
        transfer(stub, E, first, org, [(pid, available - 5)], order=ts(2025, 1, 1 + index))
        transfer(stub, E, second, org, [(pid, 5)], order=ts(2025, 2, 1 + index))
        eids += [first, second]
        activate(stub, E, org, first, pid, activated, project=f"Catalog {suffix}")
        products[pid].update(available=available, activated=activated, unactivated=available - activated)
    # The intruder holds one of the same products and one of its own.
    own = f"P-{base}-X"
    upsert(stub, E, own, "alpha Intruder Only", "Subscription")
    shared = f"P-{base}-A"
    transfer(stub, E, f"E-{base}-X", intruder, [(own, 99), (shared, 77)])
    activate(stub, E, intruder, f"E-{base}-X", shared, 7, project="Intruder Project")
    return dict(org=org, intruder=intruder, products=products, base=base, own=own, shared=shared)


PRODUCT_COLUMNS = {
    "product_name": lambda p: p["name"].lower(),
    "product_id": lambda p: p["product_id"],
    "license_type": lambda p: p["license_type"].lower(),
    "product_description": lambda p: p["product_description"].lower(),
    "deployment_type": lambda p: p["deployment_type"].lower(),
    "available_licenses": lambda p: p["available"],
    "activated_licenses": lambda p: p["activated"],
    "unactivated_licenses": lambda p: p["unactivated"],
}


def test_list_products_sums_sorts_and_pages(stub, E, catalog):
    """ListProducts returns the held products with licenses summed over entitlements, sorted by every
    column both ways (default product_name asc), paged one at a time without loss or repeats."""
    org, products = catalog["org"], catalog["products"]
    rows = [dict(info, product_id=pid) for pid, info in products.items()]
    default = stub.ListProducts(E.ListProductsRequest(organization_id=org), timeout=T)
    assert default.total_size == 4 and not default.next_page_token
    assert [p.product.product_id for p in default.products] == [r["product_id"] for r in sorted(rows, key=PRODUCT_COLUMNS["product_name"])]
    for p in default.products:
        info = products[p.product.product_id]
        assert (p.product.name, p.product.license_type, p.product.product_description, p.product.deployment_type) == (
            info["name"], info["license_type"], info["product_description"], info["deployment_type"])
        assert (p.available_licenses, p.activated_licenses, p.unactivated_licenses) == (info["available"], info["activated"], info["unactivated"])
    for column, key in PRODUCT_COLUMNS.items():
        for direction in ("asc", "desc"):
            expected = [r["product_id"] for r in sorted(rows, key=key, reverse=direction == "desc")]
            listed = collect(stub.ListProducts, E.ListProductsRequest(organization_id=org, order_by=f"{column} {direction}"), "products", 1)
            assert [p.product.product_id for p in listed] == expected, f"order_by {column} {direction}"
            whole = stub.ListProducts(E.ListProductsRequest(organization_id=org, order_by=f"{column} {direction}"), timeout=T)
            assert [p.product.product_id for p in whole.products] == expected, f"order_by {column} {direction} (one page)"


def test_list_products_search_and_isolation(stub, E, catalog):
    """Search matches product name or license type, case-insensitively, as a literal substring; the
    products and counts of another organization never appear."""
    org, products = catalog["org"], catalog["products"]

    def search(text, organization=org):
        page = stub.ListProducts(E.ListProductsRequest(organization_id=organization, search_text=text), timeout=T)
        assert page.total_size == len(page.products)
        return sorted(p.product.product_id for p in page.products)

    by = lambda predicate: sorted(pid for pid, info in products.items() if predicate(info))
    assert search("ALPHA") == by(lambda i: "alpha" in i["name"].lower())
    assert search("sub") == by(lambda i: "sub" in i["license_type"].lower())
    assert search("per") == by(lambda i: "per" in i["license_type"].lower() or "per" in i["name"].lower())
    assert search("a") == sorted(products)
    assert search("mixing") == []  # descriptions are not searched
    assert search("%") == [] and search("_") == []
    assert search("Intruder") == []
    page = stub.ListProducts(E.ListProductsRequest(organization_id=org, search_text="a", page_size=2), timeout=T)
    assert page.total_size == 4 and len(page.products) == 2 and page.next_page_token

    shared = stub.GetProduct(E.GetProductRequest(organization_id=org, product_id=catalog["shared"]), timeout=T)
    info = products[catalog["shared"]]
    assert (shared.product.available_licenses, shared.product.activated_licenses) == (info["available"], info["activated"])
    assert all(e.entitlement_id.startswith(f"E-{catalog['base']}-A") for e in shared.entitlements)
    assert search("", catalog["intruder"]) == sorted([catalog["own"], catalog["shared"]])
    intruder_shared = stub.GetProduct(E.GetProductRequest(organization_id=catalog["intruder"], product_id=catalog["shared"]), timeout=T)
    assert (intruder_shared.product.available_licenses, intruder_shared.product.activated_licenses) == (77, 7)
    refused(lambda: stub.GetProduct(E.GetProductRequest(organization_id=org, product_id=catalog["own"]), timeout=T), NOT_FOUND)


@pytest.fixture(scope="module")
def entitlement_set(stub, E):
    """Six entitlements of one organization with distinct values in every sortable column."""
    base = uid()
    org = new_org()
    rows = []
    # suffix, product name, description, sales order, po, order date, expiration (None = perpetual), quantity
    specs = [
        ("A", "Echo Amp", "bass amp", "so-300", "PO-c", ts(2025, 5, 1), None, 12),
        ("B", "alpha Mixer", "Desk", "SO-100", "po-a", ts(2025, 1, 1), ts(2099, 6, 1), 40),
        ("C", "Charlie Cam", "camera", "SO-250", "PO-e", ts(2025, 3, 1), ts(2098, 1, 1), 7),
        ("D", "bravo Speaker", "Ceiling", "so-050", "PO-b", ts(2024, 7, 1), ts(2024, 12, 1), 25),
        ("E", "Delta DSP", "processor", "SO-400", "po-d", ts(2025, 8, 1), ts(2097, 3, 1), 3),
        ("F", "foxtrot Mic", "Antenna", "SO-350", "PO-f", ts(2023, 1, 1), ts(2023, 6, 1), 18),
    ]
    for suffix, name, description, sales_order, po, order, expiration, quantity in specs:
        pid, eid = f"P-{base}-{suffix}", f"E-{base}-{suffix}"
        upsert(stub, E, pid, name, "Subscription", description, "Cloud")
        transfer(stub, E, eid, org, [(pid, quantity)], sales_order=sales_order, po=po, order=order, expiration=expiration)
        rows.append(dict(entitlement_id=eid, product_name=name, product_description=description, sales_order=sales_order, po_number=po,
                         order_date=ms(order), expiration=None if expiration is None else ms(expiration), total=quantity,
                         status="EXPIRED" if expiration is not None and ms(expiration) <= time.time() * 1000 else "ACTIVE"))
    return dict(org=org, rows=rows, base=base)


ENTITLEMENT_COLUMNS = {
    "entitlement_id": lambda r: r["entitlement_id"],
    "sales_order": lambda r: r["sales_order"].lower(),
    "product_name": lambda r: r["product_name"].lower(),
    "product_description": lambda r: r["product_description"].lower(),
    "order_date": lambda r: r["order_date"],
    "expiration_date": lambda r: (r["expiration"] is None, r["expiration"] or 0),
    "po_number": lambda r: r["po_number"].lower(),
    "total_available_licenses": lambda r: r["total"],
}


def test_list_entitlements_sorts_by_every_column_and_pages(stub, E, entitlement_set):
    """ListEntitlements sorts by every column both ways (default order_date desc; perpetual last when
    ascending by expiration), pages two at a time without loss or repeats, and fills cards and totals."""
    org, rows = entitlement_set["org"], entitlement_set["rows"]
    default = stub.ListEntitlements(E.ListEntitlementsRequest(organization_id=org), timeout=T)
    assert default.total_size == 6
    assert [e.entitlement_id for e in default.entitlements] == [
        r["entitlement_id"] for r in sorted(rows, key=ENTITLEMENT_COLUMNS["order_date"], reverse=True)]
    by_id = {r["entitlement_id"]: r for r in rows}
    for e in default.entitlements:
        r = by_id[e.entitlement_id]
        assert (e.sales_order, e.po_number, ms(e.order_date), e.total_available_licenses, e.total_unactivated_licenses) == (
            r["sales_order"], r["po_number"], r["order_date"], r["total"], r["total"])
        assert e.HasField("expiration_date") == (r["expiration"] is not None)
        assert E.EntitlementStatus.Name(e.status) == f"ENTITLEMENT_STATUS_{r['status']}"
        assert [(l.product_name, l.product_description, l.available_licenses) for l in e.lines] == [
            (r["product_name"], r["product_description"], r["total"])]
    for column, key in ENTITLEMENT_COLUMNS.items():
        for direction in ("asc", "desc"):
            expected = [r["entitlement_id"] for r in sorted(rows, key=key, reverse=direction == "desc")]
            listed = collect(stub.ListEntitlements, E.ListEntitlementsRequest(organization_id=org, order_by=f"{column} {direction}"),
                             "entitlements", 2)
            assert [e.entitlement_id for e in listed] == expected, f"order_by {column} {direction}"
    for direction in ("asc", "desc"):
        listed = collect(stub.ListEntitlements, E.ListEntitlementsRequest(organization_id=org, order_by=f"status {direction}"), "entitlements", 2)
        statuses = [E.EntitlementStatus.Name(e.status) for e in listed]
        assert statuses == sorted(statuses, reverse=direction == "desc") and len(set(e.entitlement_id for e in listed)) == 6
        assert sorted(statuses) == sorted(f"ENTITLEMENT_STATUS_{r['status']}" for r in rows)


def test_list_entitlements_filters_and_search(stub, E, entitlement_set):
    """Order and expiration date ranges are half-open (perpetual never matches an expiration range);
    search_field picks entitlement id, sales order or PO number (unspecified: any), case-insensitively."""
    org, rows, base = entitlement_set["org"], entitlement_set["rows"], entitlement_set["base"]

    def ids(**filters):
        listed = collect(stub.ListEntitlements, E.ListEntitlementsRequest(organization_id=org, **filters), "entitlements", 4)
        total = stub.ListEntitlements(E.ListEntitlementsRequest(organization_id=org, page_size=1, **filters), timeout=T).total_size
        assert total == len(listed)
        return sorted(e.entitlement_id for e in listed)

    def expect(predicate):
        return sorted(r["entitlement_id"] for r in rows if predicate(r))

    start, end = ms(ts(2025, 1, 1)), ms(ts(2025, 5, 1))
    assert ids(order_date_start=ts(2025, 1, 1), order_date_end=ts(2025, 5, 1)) == expect(lambda r: start <= r["order_date"] < end)
    assert ids(order_date_start=ts(2025, 1, 1)) == expect(lambda r: r["order_date"] >= start)
    assert ids(order_date_end=ts(2025, 1, 1)) == expect(lambda r: r["order_date"] < start)
    e_start, e_end = ms(ts(2097, 3, 1)), ms(ts(2099, 6, 1))
    assert ids(expiration_date_start=ts(2097, 3, 1), expiration_date_end=ts(2099, 6, 1)) == expect(
        lambda r: r["expiration"] is not None and e_start <= r["expiration"] < e_end)
    assert ids(expiration_date_end=ts(2098, 1, 1)) == expect(lambda r: r["expiration"] is not None and r["expiration"] < ms(ts(2098, 1, 1)))

    f = E.EntitlementSearchField
    assert ids(search_field=f.Value("ENTITLEMENT_SEARCH_FIELD_ENTITLEMENT_ID"), search_text=f"e-{base.lower()}-c") == [f"E-{base}-C"]
    assert ids(search_field=f.Value("ENTITLEMENT_SEARCH_FIELD_SALES_ORDER"), search_text="So-3") == expect(lambda r: "so-3" in r["sales_order"].lower())
    assert ids(search_field=f.Value("ENTITLEMENT_SEARCH_FIELD_PO_NUMBER"), search_text="po-A") == [f"E-{base}-B"]
    assert ids(search_field=f.Value("ENTITLEMENT_SEARCH_FIELD_SALES_ORDER"), search_text="po-a") == []
    assert ids(search_field=f.Value("ENTITLEMENT_SEARCH_FIELD_PO_NUMBER"), search_text="so-1") == []
    # Unspecified: any of the three columns.
    assert ids(search_text="-a") == expect(lambda r: any("-a" in v.lower() for v in (r["entitlement_id"], r["sales_order"], r["po_number"])))
    assert ids(search_text="0") == expect(lambda r: any("0" in v.lower() for v in (r["entitlement_id"], r["sales_order"], r["po_number"])))
    assert ids(search_text="%") == [] and ids(search_text="no such thing") == []
    assert ids(search_text="so-", order_date_start=ts(2025, 1, 1)) == expect(lambda r: r["order_date"] >= start)
    other = new_org()
    assert stub.ListEntitlements(E.ListEntitlementsRequest(organization_id=other), timeout=T).total_size == 0


def test_perpetual_entitlements_never_match_an_expiration_range(stub, E, entitlement_set):
    """An expiration range with only a start (or only an end) excludes perpetual entitlements."""
    org, rows = entitlement_set["org"], entitlement_set["rows"]
    perpetual = [r["entitlement_id"] for r in rows if r["expiration"] is None]
    for filters in (dict(expiration_date_start=ts(2098, 1, 1)), dict(expiration_date_end=ts(2100, 1, 1)),
                    dict(expiration_date_start=ts(2000, 1, 1), expiration_date_end=ts(2200, 1, 1))):
        page = stub.ListEntitlements(E.ListEntitlementsRequest(organization_id=org, **filters), timeout=T)
        listed = sorted(e.entitlement_id for e in page.entitlements)
        start = ms(filters["expiration_date_start"]) if "expiration_date_start" in filters else -1
        end = ms(filters["expiration_date_end"]) if "expiration_date_end" in filters else 1 << 62
        expected = sorted(r["entitlement_id"] for r in rows if r["expiration"] is not None and start <= r["expiration"] < end)
        assert listed == expected, (
            f"expiration filter {list(filters)}: perpetual {perpetual} must not match (proto: 'perpetual entitlements never match a range'); "
            f"got {listed}")
        assert page.total_size == len(expected)


@pytest.fixture(scope="module")
def activation_set(stub, E):
    """Seven activations of one organization with distinct values in every sortable column, over three
    products and two entitlements, plus an intruder organization's activation."""
    base = uid()
    org, intruder = new_org(), new_org()
    p = {k: f"P-{base}-{k}" for k in "XYZ"}
    upsert(stub, E, p["X"], "Xylo Amp")
    upsert(stub, E, p["Y"], "yankee Mixer")
    upsert(stub, E, p["Z"], "Zulu Cam")
    e1, e2 = f"E-{base}-1", f"E-{base}-2"
    transfer(stub, E, e1, org, [(p["X"], 100), (p["Y"], 100)])
    transfer(stub, E, e2, org, [(p["X"], 100), (p["Z"], 100)])
    specs = [  # entitlement, product, quantity, project, manager, activated by, serial
        (e1, "X", 4, "Opera House", "mgr Kim", "Ada Lovelace", "SN-300"),
        (e2, "Z", 9, "arena", "Mgr Ali", "bob Builder", ""),
        (e1, "Y", 1, "Ballroom", "mgr Zed", "Carol Danvers", "sn-100"),
        (e2, "X", 6, "cathedral", "MGR Bea", "dave Grohl", "SN-200"),
        (e1, "X", 2, "Dome", "mgr Lou", "Eve Online", "sn-050"),
        (e2, "Z", 15, "embassy", "Mgr Fay", "frank Ocean", "SN-999"),
        (e1, "Y", 11, "Forum", "mgr Neo", "Gina Tonic", "sn-777"),
    ]
    made = []
    for i, (eid, key, quantity, project, manager, by, serial) in enumerate(specs):
        metadata = [("x-portal-member-id", f"mem_{i}"), ("x-portal-display-name", by)]
        made.append(activate(stub, E, org, eid, p[key], quantity, metadata=metadata, project=project, manager=manager, serial=serial))
        time.sleep(0.005)
    transfer(stub, E, f"E-{base}-I", intruder, [(p["X"], 10)])
    foreign = activate(stub, E, intruder, f"E-{base}-I", p["X"], 1, project="Opera House Intruder", manager="mgr Kim", serial="SN-300")
    return dict(org=org, intruder=intruder, made=made, products=p, e1=e1, e2=e2, foreign=foreign)


ACTIVATION_COLUMNS = {
    "activation_date": lambda a: ms(a.activation_date),
    "quantity": lambda a: a.quantity,
    "project_name": lambda a: a.project_name.lower(),
    "project_manager": lambda a: a.project_manager.lower(),
    "activated_by": lambda a: a.activated_by.lower(),
    "serial_number": lambda a: a.serial_number.lower(),
}


def test_list_activations_sorts_by_every_column_and_pages(stub, E, activation_set):
    """ListActivations sorts by every column both ways (default activation_date desc), and paging by
    two returns each activation once with the right total."""
    org, made = activation_set["org"], activation_set["made"]
    assert len({ms(a.activation_date) for a in made}) == len(made)
    default = stub.ListActivations(E.ListActivationsRequest(organization_id=org), timeout=T)
    assert default.total_size == 7
    assert [a.activation_id for a in default.activations] == [a.activation_id for a in reversed(made)]
    assert list(default.activations) == list(reversed(made))
    for column, key in ACTIVATION_COLUMNS.items():
        for direction in ("asc", "desc"):
            expected = [a.activation_id for a in sorted(made, key=key, reverse=direction == "desc")]
            listed = collect(stub.ListActivations, E.ListActivationsRequest(organization_id=org, order_by=f"{column} {direction}"), "activations", 2)
            assert [a.activation_id for a in listed] == expected, f"order_by {column} {direction}"
    # entitlement_id and product_name repeat (two entitlements, three products): check order and completeness.
    for column, key in (("entitlement_id", lambda a: a.entitlement_id), ("product_name", lambda a: a.product_name.lower())):
        for direction in ("asc", "desc"):
            listed = collect(stub.ListActivations, E.ListActivationsRequest(organization_id=org, order_by=f"{column} {direction}"), "activations", 2)
            values = [key(a) for a in listed]
            assert values == sorted(values, reverse=direction == "desc"), f"order_by {column} {direction}"
            assert sorted(a.activation_id for a in listed) == sorted(a.activation_id for a in made)


def test_list_activations_filters_search_and_isolation(stub, E, activation_set):
    """Date ranges are half-open, product_ids filters, and search matches product name, project name,
    project manager, activated by, serial number and entitlement id case-insensitively; another
    organization's activations never appear."""
    org, made, p = activation_set["org"], activation_set["made"], activation_set["products"]

    def ids(**filters):
        listed = collect(stub.ListActivations, E.ListActivationsRequest(organization_id=org, **filters), "activations", 3)
        total = stub.ListActivations(E.ListActivationsRequest(organization_id=org, page_size=1, **filters), timeout=T).total_size
        assert total == len(listed), filters
        return sorted(a.activation_id for a in listed)

    def expect(predicate):
        return sorted(a.activation_id for a in made if predicate(a))

    start, end = made[2].activation_date, made[5].activation_date
    assert ids(activation_date_start=start, activation_date_end=end) == sorted(a.activation_id for a in made[2:5])
    assert ids(activation_date_start=start) == sorted(a.activation_id for a in made[2:])
    assert ids(activation_date_end=start) == sorted(a.activation_id for a in made[:2])
    assert ids(product_ids=[p["Y"]]) == expect(lambda a: a.product_id == p["Y"])
    assert ids(product_ids=[p["X"], p["Z"]]) == expect(lambda a: a.product_id in (p["X"], p["Z"]))
    assert ids(product_ids=[f"P-NONE"]) == []
    assert ids(search_text="YANKEE") == expect(lambda a: a.product_id == p["Y"])  # product name
    assert ids(search_text="OPERA") == [made[0].activation_id]  # project name
    assert ids(search_text="mgr z") == [made[2].activation_id]  # project manager
    assert ids(search_text="GROHL") == [made[3].activation_id]  # activated by
    assert ids(search_text="sn-99") == [made[5].activation_id]  # serial number
    assert ids(search_text=activation_set["e2"].lower()) == expect(lambda a: a.entitlement_id == activation_set["e2"])  # entitlement id
    assert ids(search_text="%") == [] and ids(search_text="_") == []
    assert ids(search_text="mgr", product_ids=[p["X"]], activation_date_start=made[1].activation_date) == expect(
        lambda a: a.product_id == p["X"] and ms(a.activation_date) >= ms(made[1].activation_date))
    assert ids(search_text="Intruder") == []
    assert activation_set["foreign"].activation_id not in ids()
    assert all(a.organization_id == org and a.entitlement_id and isinstance(a.serial_number, str) for a in all_activations(stub, E, org))
    intruder = all_activations(stub, E, activation_set["intruder"])
    assert [a.activation_id for a in intruder] == [activation_set["foreign"].activation_id]
    # Activating another organization's entitlement is NOT_FOUND, and it stays untouched.
    refused(lambda: activate(stub, E, activation_set["intruder"], activation_set["e1"], p["X"], 1), NOT_FOUND)
    assert summary(stub, E, activation_set["intruder"]).activated_licenses == 1


UNICODE_NAMES = ["Émile", "Öl", "éclair", "zeta", "Alpha", "ärger", "Zoë", "Ωmega", "ωmega", "beta"]


def unicode_activations(stub, E):
    base = uid()
    pid = f"P-{base}"
    upsert(stub, E, pid, "Unicode Amp")
    org, eid = new_org(), f"E-{base}"
    transfer(stub, E, eid, org, [(pid, 100)])
    made = [activate(stub, E, org, eid, pid, 1, project=name) for name in UNICODE_NAMES]
    return org, eid, pid, made


def test_keyset_paging_by_text_column_with_unicode_names_returns_every_row_once(stub, E):
    """Paging one row at a time by project name (and, as a control, by date and quantity), with names
    that begin with non-ASCII letters in both cases, returns every activation exactly once both ways."""
    org, _, _, made = unicode_activations(stub, E)
    everyone = sorted(a.activation_id for a in made)
    problems = []
    for column in ("activation_date", "quantity", "project_name"):
        for direction in ("asc", "desc"):
            try:
                listed = collect(stub.ListActivations, E.ListActivationsRequest(organization_id=org, order_by=f"{column} {direction}"), "activations", 1)
            except AssertionError as error:
                problems.append(f"order_by {column} {direction}: {str(error).splitlines()[0]}")
                continue
            if sorted(a.activation_id for a in listed) != everyone:
                problems.append(f"order_by {column} {direction} paged by 1 returned {[a.project_name for a in listed]}")
            whole = stub.ListActivations(E.ListActivationsRequest(organization_id=org, order_by=f"{column} {direction}"), timeout=T)
            assert [a.activation_id for a in listed] == [a.activation_id for a in whole.activations] or problems, \
                f"order_by {column} {direction}: paging by 1 and one page disagree"
    assert not problems, f"expected all of {UNICODE_NAMES}:\n" + "\n".join(problems)


def test_search_is_case_insensitive_beyond_ascii(stub, E):
    """search_text is a case-insensitive substring match also for non-ASCII letters."""
    org, _, _, _ = unicode_activations(stub, E)
    problems = []
    for text, expected in (("émile", ["Émile"]), ("ÉMILE", ["Émile"]), ("ÄRGER", ["ärger"]), ("öl", ["Öl"]),
                           ("ΩMEGA", ["Ωmega", "ωmega"]), ("zoë", ["Zoë"]), ("ZETA", ["zeta"])):
        found = sorted(a.project_name for a in all_activations(stub, E, org, search_text=text))
        if found != sorted(expected):
            problems.append(f"search {text!r} found {found}, expected {sorted(expected)}")
    assert not problems, "\n".join(problems)


def test_page_tokens_stay_correct_while_rows_arrive(stub, E):
    """Rows added while paging (newest first) do not disturb the pages that follow: every row present
    at the start is returned exactly once."""
    base = uid()
    pid = f"P-{base}"
    upsert(stub, E, pid, "Arrival Amp")
    org, eid = new_org(), f"E-{base}"
    transfer(stub, E, eid, org, [(pid, 100)])
    made = [activate(stub, E, org, eid, pid, 1, project=f"Arrival {i}") for i in range(8)]
    for order_by in ("activation_date desc", "project_name asc"):
        request = E.ListActivationsRequest(organization_id=org, page_size=3, order_by=order_by)
        first = stub.ListActivations(request, timeout=T)
        seen = [a.activation_id for a in first.activations]
        late = activate(stub, E, org, eid, pid, 1, project=f"Arrival late {order_by}").activation_id
        request.page_token = first.next_page_token
        while request.page_token:
            page = stub.ListActivations(request, timeout=T)
            seen += [a.activation_id for a in page.activations]
            request.page_token = page.next_page_token
        seen = [x for x in seen if x != late]
        assert len(seen) == len(set(seen)) and set(a.activation_id for a in made) <= set(seen), order_by
        made.append(type(made[0])(activation_id=late))


# --------------------------------------------------------------------------------------------
# 6. CSV


@pytest.fixture(scope="module")
def csv_set(stub, E):
    """An organization with activations whose cells need quoting and neutralising."""
    base = uid()
    org = new_org()
    plus, normal = f"P-{base}-PLUS", f"P-{base}-N"
    upsert(stub, E, plus, "+Plus Amp")
    upsert(stub, E, normal, "Zoë Ünïcødé 東京")
    eid = f"E-{base}"
    transfer(stub, E, eid, org, [(plus, 100), (normal, 100)])
    specs = [  # product, quantity, project, manager, serial, display name
        (normal, 2, 'Main, "Hall" A', "=SUM(A1:A9)", "-42", "Ada Lovelace"),
        (plus, 1, "Line one\nLine two", "@manager", "SN,7", "@admin"),
        (normal, 5, "Café – Ünïcødé 日本", '=HYPERLINK("http://x")', "", "-Minus Person"),
        (plus, 3, "plain", "+Plus Manager", "=1+1", "Bob"),
    ]
    made = []
    for product, quantity, project, manager, serial, by in specs:
        made.append(activate(stub, E, org, eid, product, quantity, project=project, manager=manager, serial=serial,
                             metadata=[("x-portal-member-id", "mem_x"), ("x-portal-display-name", by)]))
        time.sleep(0.005)
    return dict(org=org, made=made, plus=plus, normal=normal, eid=eid)


def csv_row(a, offset_hours=0) -> str:
    def cell(value: str) -> str:
        if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
            value = "'" + value
        if any(c in value for c in ',"\n\r'):
            value = '"' + value.replace('"', '""') + '"'
        return value

    cells = [csv_time(a.activation_date, offset_hours)] + [cell(v) for v in (
        a.product_name, str(a.quantity), a.project_name, a.project_manager, a.activated_by, a.entitlement_id, a.serial_number)]
    return ",".join(cells) + "\r\n"


def test_csv_export_exact_content_with_quoting_and_neutralising(stub, E, csv_set):
    """The export is UTF-8 CSV with CRLF and the header row; times are `DD MMM YYYY, HH:MM:SS` in UTC
    (quoted); quotes are doubled; cells starting with = + - @ get a leading apostrophe; unicode is kept."""
    made, eid = csv_set["made"], csv_set["eid"]
    text = csv_export(stub, E, csv_set["org"])
    a0, a1, a2, a3 = made
    literal = CSV_HEADER + "".join([
        f"{csv_time(a3.activation_date)},'+Plus Amp,3,plain,'+Plus Manager,Bob,{eid},'=1+1\r\n",
        f'{csv_time(a2.activation_date)},Zoë Ünïcødé 東京,5,Café – Ünïcødé 日本,"\'=HYPERLINK(""http://x"")",\'-Minus Person,{eid},\r\n',
        f'{csv_time(a1.activation_date)},\'+Plus Amp,1,"Line one\nLine two",\'@manager,\'@admin,{eid},"SN,7"\r\n',
        f'{csv_time(a0.activation_date)},Zoë Ünïcødé 東京,2,"Main, ""Hall"" A",\'=SUM(A1:A9),Ada Lovelace,{eid},\'-42\r\n',
    ])
    assert text == literal
    assert text == CSV_HEADER + "".join(csv_row(a) for a in reversed(made))


def test_csv_export_time_zone_filters_and_order(stub, E, csv_set):
    """The export converts times to the named IANA zone (Asia/Tokyo, UTC+9), applies the list's filters
    and order, and is header-only for an organization without activations."""
    org, made = csv_set["org"], csv_set["made"]
    tokyo = csv_export(stub, E, org, time_zone="Asia/Tokyo")
    assert tokyo == CSV_HEADER + "".join(csv_row(a, 9) for a in reversed(made))
    assert csv_export(stub, E, org, time_zone="UTC") == CSV_HEADER + "".join(csv_row(a) for a in reversed(made))
    assert csv_export(stub, E, org, product_ids=[csv_set["plus"]], order_by="quantity asc") == CSV_HEADER + csv_row(made[1]) + csv_row(made[3])
    assert csv_export(stub, E, org, search_text="東京", order_by="quantity desc") == CSV_HEADER + csv_row(made[2]) + csv_row(made[0])
    assert csv_export(stub, E, org, search_text="hall") == CSV_HEADER + csv_row(made[0])
    assert csv_export(stub, E, org, activation_date_start=made[1].activation_date, activation_date_end=made[3].activation_date,
                      order_by="activation_date asc") == CSV_HEADER + csv_row(made[1]) + csv_row(made[2])
    assert csv_export(stub, E, org, order_by="project_name asc", time_zone="Asia/Tokyo") == CSV_HEADER + "".join(
        csv_row(a, 9) for a in sorted(made, key=lambda a: a.project_name.lower()))
    assert csv_export(stub, E, new_org()) == CSV_HEADER
    assert csv_export(stub, E, org, search_text="nothing matches this") == CSV_HEADER
