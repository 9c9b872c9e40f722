"""Gateway benchmark helpers: populate a demo organization through the services' RPCs, print a
session token, verify the dashboard answers, and measure the gateway's added latency.

Usage: gateway_bench.py populate | token | describe | latency TOKEN | json-cost TOKEN ORACLE
(env STUBS, DATA_DIR, GATEWAY, ENTITLEMENTS, IDENTITY, AUDIT ports; ACTIVATIONS=100000 SAMPLES=2000)
"""
import base64
import glob
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.environ["STUBS"])
import grpc  # noqa: E402
from portal.audit.v1 import audit_pb2 as A, audit_pb2_grpc as AG  # noqa: E402
from portal.entitlements.v1 import entitlements_pb2 as E, entitlements_pb2_grpc as EG  # noqa: E402
from portal.gateway.v1 import portal_pb2 as P, portal_pb2_grpc as PG  # noqa: E402
from portal.identity.v1 import identity_pb2 as I, identity_pb2_grpc as IG  # noqa: E402

ACTIVATIONS = int(os.environ.get("ACTIVATIONS", 100_000))
SAMPLES = int(os.environ.get("SAMPLES", 2000))
DATA_DIR = os.environ["DATA_DIR"]
EMAIL, PASSWORD = "ada@northwind.example", "portal-bench-password"
ORG_FILE = os.path.join(DATA_DIR, "organization.txt")


def stub(cls, port):
    return cls(grpc.insecure_channel(f"127.0.0.1:{port}"))


gateway = stub(PG.PortalServiceStub, os.environ["GATEWAY"])
entitlements = stub(EG.EntitlementsServiceStub, os.environ["ENTITLEMENTS"])
identity = stub(IG.IdentityServiceStub, os.environ["IDENTITY"])
audit = stub(AG.AuditServiceStub, os.environ["AUDIT"])


def invite_secret(email):
    """The invite code of the newest spooled mail to `email`."""
    for _ in range(300):
        for path in sorted(glob.glob(os.path.join(DATA_DIR, "identity", "mail-spool", "*.eml")), key=os.path.getmtime, reverse=True):
            text = open(path, encoding="utf-8").read()
            if f"To: {email}" in text:
                return next(line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Invite code: "))
        time.sleep(0.1)
    raise RuntimeError(f"no invite mail to {email}")


def organization():
    return open(ORG_FILE).read().strip()


def token():
    return gateway.Login(P.LoginRequest(organization_id=organization(), email=EMAIL, password=PASSWORD), timeout=30).session_token


def populate():
    if os.path.exists(ORG_FILE):
        print(f"# already populated: {organization()}", file=sys.stderr)
        return
    started = time.perf_counter()
    org = identity.CreateOrganization(I.CreateOrganizationRequest(
        name="Northwind Robotics", first_admin_email=EMAIL, idempotency_key=uuid.uuid4().hex), timeout=30).organization.organization_id
    identity.AcceptInvite(I.AcceptInviteRequest(invite_secret=invite_secret(EMAIL), first_name="Ada", last_name="Lovelace", password=PASSWORD), timeout=30)
    for n in range(12):
        entitlements.UpsertProduct(E.UpsertProductRequest(product=E.Product(
            product_id=f"P{n:02d}", name=f"Product {n:02d}", license_type="Subscription", product_description="Licenses", deployment_type="Cloud")), timeout=30)
    now = int(time.time())
    lines = []
    for e in range(50):
        eid = f"ENT-{e:04d}"
        products = [f"P{(e + k) % 12:02d}" for k in range(3)]
        entitlements.TransferEntitlement(E.TransferEntitlementRequest(
            entitlement_id=eid, organization_id=org, sales_order=f"SO-{e:05d}", po_number=f"PO-{e:05d}",
            order_date={"seconds": now - 86_400 * (e + 1)}, expiration_date={"seconds": now + 86_400 * 700},
            lines=[E.TransferLine(product_id=p, quantity=ACTIVATIONS) for p in products]), timeout=30)
        lines += [(eid, p) for p in products]
    member = identity.Login(I.LoginRequest(organization_id=org, email=EMAIL, password=PASSWORD), timeout=30).principal
    metadata = [("x-portal-member-id", member.member_id), ("x-portal-display-name", member.display_name)]
    pending = []
    for i in range(ACTIVATIONS):
        eid, pid = lines[i % len(lines)]
        pending.append(entitlements.Activate.future(E.ActivateRequest(
            organization_id=org, entitlement_id=eid, product_id=pid, quantity=1, project_name=f"Project {i % 40}",
            project_manager="Grace Hopper", serial_number=f"SN-{i:07d}", idempotency_key=f"bench-{i}"), metadata=metadata, timeout=120))
        if len(pending) >= 64:
            pending.pop(0).result()
    for future in pending:
        future.result()
    # Wait until the audit service has every event (delivered by the outbox relays).
    while audit.ListEvents(A.ListEventsRequest(organization_id=org, page_size=1), timeout=30).total_size < ACTIVATIONS:
        time.sleep(1)
    with open(ORG_FILE, "w") as out:
        out.write(org)
    print(f"# populated {org}: {ACTIVATIONS:,} activations in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def describe():
    bearer = [("authorization", f"Bearer {token()}")]
    dashboard = gateway.GetDashboard(P.GetDashboardRequest(), metadata=bearer, timeout=30)
    assert dashboard.activated_licenses >= ACTIVATIONS and dashboard.HasField("total_members") and len(dashboard.recent_events) == 5
    return f"{dashboard.activated_licenses:,} activations, {dashboard.total_members} member(s)"


def percentiles(durations):
    ordered = sorted(durations)
    return ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99)] * 1000


def timed(call):
    for _ in range(200):
        call()
    durations = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        call()
        durations.append(time.perf_counter() - started)
    return percentiles(durations)


def latency(session):
    bearer = [("authorization", f"Bearer {session}")]
    org = organization()
    direct = timed(lambda: entitlements.ListProducts(E.ListProductsRequest(organization_id=org, page_size=10), timeout=30))
    through = timed(lambda: gateway.ListProducts(P.ListProductsRequest(page_size=10), metadata=bearer, timeout=30))
    summary = timed(lambda: entitlements.GetSummary(E.GetSummaryRequest(organization_id=org, recent_activations_limit=5), timeout=30))
    dashboard = timed(lambda: gateway.GetDashboard(P.GetDashboardRequest(), metadata=bearer, timeout=30))
    print(f"products page, direct to entitlements  p50 {direct[0]:6.2f} ms  p99 {direct[1]:6.2f} ms")
    print(f"products page, through the gateway     p50 {through[0]:6.2f} ms  p99 {through[1]:6.2f} ms"
          f"  (gateway adds {through[0] - direct[0]:.2f} ms at p50)")
    print(f"summary, direct to entitlements        p50 {summary[0]:6.2f} ms  p99 {summary[1]:6.2f} ms")
    print(f"dashboard (3 backends), one caller     p50 {dashboard[0]:6.2f} ms  p99 {dashboard[1]:6.2f} ms")


def json_cost(session, oracle):
    """What the web listener's JSON mapping costs per call: the dashboard's and a 50-row activations
    page's responses converted from binary to JSON, and back, by the codec in a release build
    (portal-json-oracle, mean of 20,000 conversions each)."""
    bearer = [("authorization", f"Bearer {session}")]
    dashboard = gateway.GetDashboard(P.GetDashboardRequest(), metadata=bearer, timeout=30)
    page = gateway.ListActivations(P.ListActivationsRequest(page_size=50), metadata=bearer, timeout=30)
    process = subprocess.Popen([oracle], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(request):
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    for label, message in (("dashboard", dashboard), ("activations page of 50", page)):
        name = message.DESCRIPTOR.full_name
        binary = message.SerializeToString()
        to_json = ask({"type": name, "binary": base64.b64encode(binary).decode(), "repeat": 20000})
        back = ask({"type": name, "json": to_json["json"], "repeat": 20000})
        assert base64.b64decode(back["binary"]) and "error" not in back, back
        print(f"JSON mapping, {label}: {len(binary):,} B binary -> {len(to_json['json']):,} B JSON "
              f"{int(to_json['nanosecondsEach']) / 1000:.1f} us, JSON -> binary {int(back['nanosecondsEach']) / 1000:.1f} us")
    process.stdin.close()
    process.wait()


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "populate":
        populate()
    elif command == "token":
        print(token())
    elif command == "describe":
        print(describe())
    elif command == "json-cost":
        json_cost(sys.argv[2], sys.argv[3])
    else:
        latency(sys.argv[2])
