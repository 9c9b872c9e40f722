"""Identity service benchmark: ORGS organizations with MEMBERS members in all, written straight into
the service's SQLite database (hashing a million passwords with scrypt would take hours), then
Authenticate and member-list (search + sort) latency measured through the running service.

Usage: identity_bench.py populate DB_PATH  |  identity_bench.py measure HOST:PORT DB_PATH
(env ORGS=10000 MEMBERS=1000000 SAMPLES=2000)
"""
import base64
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import time

ORGS = int(os.environ.get("ORGS", 10_000))
MEMBERS = int(os.environ.get("MEMBERS", 1_000_000))
SAMPLES = int(os.environ.get("SAMPLES", 2000))
PASSWORD = "benchmark password 1"
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Dennis", "Radia", "Leslie", "Frances",
         "John", "Tim", "Linus", "Guido", "Bjarne", "Niklaus", "Katherine", "Hedy"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Ritchie", "Perlman",
        "Lamport", "Allen", "McCarthy", "Berners-Lee", "Torvalds", "van Rossum", "Stroustrup", "Wirth", "Johnson", "Lamarr"]


def scrypt_hash(password: str) -> str:
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=1 << 15, r=8, p=1, maxmem=64 << 20, dklen=32)
    return f"scrypt$32768$8$1${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def populate(path: str) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    existing = db.execute("SELECT COUNT(*) FROM members").fetchone()[0]
    if existing >= MEMBERS:
        print(f"# {existing:,} members already present")
        return
    started = time.perf_counter()
    password_hash = scrypt_hash(PASSWORD)
    now = int(time.time() * 1000)
    rng = random.Random(7)
    db.executemany("INSERT INTO organizations (id, name, idempotency_key, first_invite_id, created_at) VALUES (?, ?, ?, ?, ?)",
                   ((f"org_bench_{o:05d}", f"Organization {o}", f"bench-{o}", f"inv_bench_{o:05d}", now) for o in range(ORGS)))
    per_org = MEMBERS // ORGS

    def rows():
        for m in range(MEMBERS):
            org = m % ORGS
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email = f"{first}.{last}.{m}@example.com".lower()
            role = "ADMIN" if m < ORGS else "VIEWER"
            phone = f"+1415{m:07d}" if m % 3 else ""
            yield (f"mem_bench_{m:07d}", f"org_bench_{org:05d}", email, email, first, last, phone, role, password_hash, now - m)

    db.executemany("""INSERT INTO members (id, org_id, email, email_key, first_name, last_name, phone, role, password_hash, created_at)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows())
    db.commit()
    db.close()
    print(f"# populated {ORGS:,} organizations and {MEMBERS:,} members ({per_org} each) in {time.perf_counter() - started:.1f} s")


def percentiles(durations):
    ordered = sorted(durations)
    return f"p50 {statistics.median(ordered):6.2f} ms  p99 {ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]:6.2f} ms"


def measure(address: str) -> None:
    import grpc
    sys.path.insert(0, os.environ["STUBS"])
    from portal.identity.v1 import identity_pb2 as I
    from portal.identity.v1 import identity_pb2_grpc as G
    stub = G.IdentityServiceStub(grpc.insecure_channel(address))
    rng = random.Random(11)

    tokens = []
    for m in rng.sample(range(ORGS, MEMBERS), 50):
        org = f"org_bench_{m % ORGS:05d}"
        member = stub.GetMember(I.GetMemberRequest(organization_id=org, member_id=f"mem_bench_{m:07d}"), timeout=10).member
        tokens.append(stub.Login(I.LoginRequest(organization_id=org, email=member.email, password=PASSWORD), timeout=30).session_token)

    def timed(call):
        for _ in range(50):
            call()
        durations = []
        for _ in range(SAMPLES):
            started = time.perf_counter()
            call()
            durations.append((time.perf_counter() - started) * 1000)
        return percentiles(durations)

    print("Authenticate (client-observed, loopback):        ", timed(lambda: stub.Authenticate(I.AuthenticateRequest(session_token=rng.choice(tokens)), timeout=10)))
    empty = I.ListMembersRequest(organization_id="org_bench_00000", page_size=1)
    print("empty-ish call for scale (ListMembers 1 row):    ", timed(lambda: stub.ListMembers(empty, timeout=10)))

    def member_page():
        org = f"org_bench_{rng.randrange(ORGS):05d}"
        field, text = rng.choice([(I.MEMBER_SEARCH_FIELD_NAME, rng.choice(FIRST)[:3]), (I.MEMBER_SEARCH_FIELD_EMAIL, "example"),
                                  (I.MEMBER_SEARCH_FIELD_LAST_NAME, rng.choice(LAST)[:4]), (I.MEMBER_SEARCH_FIELD_UNSPECIFIED, "")])
        order = rng.choice(["last_name asc", "first_name desc", "email asc", "created_at desc", "role asc", "phone desc"])
        stub.ListMembers(I.ListMembersRequest(organization_id=org, page_size=50, order_by=order, search_field=field, search_text=text), timeout=10)

    print("ListMembers page (search + sort, 50 rows):       ", timed(member_page))


if __name__ == "__main__":
    if sys.argv[1] == "populate":
        populate(sys.argv[2])
    else:
        measure(sys.argv[2])
