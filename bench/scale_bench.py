"""Scale across organizations: load spread over ORGS organizations against one or more instances of a
service sharing one PostgreSQL database; prints calls/s (and events/s for audit) and the CPU each
process used meanwhile.

Usage: scale_bench.py seed-entitlements HOST:PORT             (a product and one entitlement per organization)
       scale_bench.py seed-identity POSTGRES_URL              (ORGS organizations with MEMBERS_PER_ORG members, straight into the database)
       scale_bench.py run SERVICE HOST:PORT[,HOST:PORT...] PIDS   (SERVICE: entitlements | identity | audit;
                                                                  PIDS: comma-separated processes whose CPU is reported)
(env ORGS=200 CONCURRENCY=48 DURATION=20 BATCH=100 MEMBERS_PER_ORG=5)
"""
import base64
import hashlib
import os
import subprocess
import sys
import time
import uuid

ORGS = int(os.environ.get("ORGS", 200))
CONCURRENCY = int(os.environ.get("CONCURRENCY", 48))
DURATION = float(os.environ.get("DURATION", 20))
BATCH = int(os.environ.get("BATCH", 100))
MEMBERS_PER_ORG = int(os.environ.get("MEMBERS_PER_ORG", 5))
PASSWORD = "benchmark password 1"
PRODUCT = "SKU-SCALE"
ACTOR = [("x-portal-member-id", "mem_ada"), ("x-portal-display-name", "Ada Lovelace")]


def organization(index):
    return f"org_scale_{index:04d}"


def stubs(module, service, addresses):
    import grpc
    return [getattr(module, service)(grpc.insecure_channel(address)) for address in addresses.split(",")]


def protos():
    sys.path.insert(0, os.environ["STUBS"])
    from portal.entitlements.v1 import entitlements_pb2 as E, entitlements_pb2_grpc as EG
    from portal.identity.v1 import identity_pb2 as I, identity_pb2_grpc as IG
    from portal.audit.v1 import audit_pb2 as A, audit_pb2_grpc as AG
    return E, EG, I, IG, A, AG


def seed_entitlements(address):
    from google.protobuf.timestamp_pb2 import Timestamp
    E, EG, *_ = protos()
    stub = stubs(EG, "EntitlementsServiceStub", address)[0]
    stub.UpsertProduct(E.UpsertProductRequest(product=E.Product(
        product_id=PRODUCT, name="Scale Engine", license_type="Subscription", product_description="engine",
        deployment_type="Cloud")), timeout=30)
    for index in range(ORGS):
        stub.TransferEntitlement(E.TransferEntitlementRequest(
            entitlement_id=f"ENT-SCALE-{index:04d}", organization_id=organization(index), sales_order=f"SO-{index}",
            order_date=Timestamp(seconds=1_767_225_600), lines=[E.TransferLine(product_id=PRODUCT, quantity=10_000_000)]),
            timeout=30)


def seed_identity(url):
    salt = os.urandom(16)
    key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=1 << 15, r=8, p=1, maxmem=64 << 20, dklen=32)
    password_hash = f"scrypt$32768$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"
    now = int(time.time() * 1000)
    lines = ["\\copy organizations (id, name, idempotency_key, first_invite_id, created_at) FROM STDIN WITH (FORMAT csv)"]
    lines += [f"{organization(o)},Organization {o},scale-{o},inv_scale_{o:04d},{now}" for o in range(ORGS)]
    lines += ["\\.", "\\copy members (id, org_id, email, email_key, first_name, last_name, phone, role, password_hash, created_at) "
                     "FROM STDIN WITH (FORMAT csv)"]
    for o in range(ORGS):
        for m in range(MEMBERS_PER_ORG):
            email = f"member{m}@org{o}.example.com"
            lines.append(f"mem_scale_{o:04d}_{m},{organization(o)},{email},{email},Member,{m},\"\",{'ADMIN' if m == 0 else 'VIEWER'},"
                         f"{password_hash},{now}")
    lines.append("\\.")
    subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1"], input="\n".join(lines) + "\n", text=True, check=True)


def cpu_seconds(pid):
    """User + system CPU seconds of a process (and, for PostgreSQL's postmaster, of its children so far)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks


def postgres_cpu():
    """CPU seconds of every running PostgreSQL backend and worker on the machine (they come and go)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "postgres":
                    continue
            total += cpu_seconds(int(pid))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def run(service, addresses, pids):
    E, EG, I, IG, A, AG = protos()
    from google.protobuf.timestamp_pb2 import Timestamp
    if service == "entitlements":
        targets = stubs(EG, "EntitlementsServiceStub", addresses)

        def call(i, stub):
            o = i % ORGS
            return stub.Activate.future(E.ActivateRequest(
                organization_id=organization(o), entitlement_id=f"ENT-SCALE-{o:04d}", product_id=PRODUCT, quantity=1,
                project_name="Scale", project_manager="Grace Hopper", idempotency_key=uuid.uuid4().hex),
                metadata=ACTOR, timeout=120)
        per_call = 1
    elif service == "identity":
        targets = stubs(IG, "IdentityServiceStub", addresses)

        def call(i, stub):
            o, m = i % ORGS, (i // ORGS) % MEMBERS_PER_ORG
            return stub.Login.future(I.LoginRequest(organization_id=organization(o), email=f"member{m}@org{o}.example.com",
                                                    password=PASSWORD), timeout=120)
        per_call = 1
    else:
        targets = stubs(AG, "AuditServiceStub", addresses)
        now = int(time.time())

        def call(i, stub):
            o = i % ORGS
            events = [A.NewEvent(event_id=uuid.uuid4().hex, organization_id=organization(o), time=Timestamp(seconds=now),
                                 event_type=A.EVENT_TYPE_LICENSES, action=1, message=f"Scale event {i} {e}", user="system")
                      for e in range(BATCH)]
            return stub.AppendEvents.future(A.AppendEventsRequest(events=events), timeout=120)
        per_call = BATCH

    pids = [int(pid) for pid in pids.split(",") if pid]
    for i in range(CONCURRENCY):  # warm every connection
        call(i, targets[i % len(targets)]).result()
    cpu_before = [cpu_seconds(pid) for pid in pids]
    database_before, client_before = postgres_cpu(), time.process_time()
    started = time.perf_counter()
    pending, done, i = [], 0, 0
    while time.perf_counter() - started < DURATION:
        pending.append(call(i, targets[i % len(targets)]))
        i += 1
        if len(pending) >= CONCURRENCY:
            pending.pop(0).result()
            done += 1
    for future in pending:
        future.result()
        done += 1
    elapsed = time.perf_counter() - started
    cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before)]
    database_cpu, client_cpu = postgres_cpu() - database_before, time.process_time() - client_before
    unit = "events" if per_call > 1 else "calls"
    print(f"{service:12} {len(targets)} instance(s): {done * per_call / elapsed:9,.0f} {unit}/s over {ORGS} organizations, "
          f"{CONCURRENCY} in flight; CPU per second: instances {' + '.join(f'{c / elapsed:.2f}' for c in cpu)}, "
          f"PostgreSQL {database_cpu / elapsed:.2f}, client {client_cpu / elapsed:.2f} (of 2 cores)", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "seed-entitlements":
        seed_entitlements(sys.argv[2])
    elif sys.argv[1] == "seed-identity":
        seed_identity(sys.argv[2])
    else:
        run(sys.argv[2], sys.argv[3], sys.argv[4])
