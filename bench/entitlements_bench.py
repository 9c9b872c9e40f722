"""Entitlements benchmark: one organization with ENTITLEMENTS entitlements and ACTIVATIONS activations
(written straight into the database), then list-query latency, CSV export of every activation with
the server's memory, and the throughput of durable, acknowledged activations through the service.

Usage: entitlements_bench.py populate DB_PATH  |  entitlements_bench.py measure HOST:PORT SERVER_PID
       entitlements_bench.py copy-to-postgres DB_PATH POSTGRES_URL   (the populated rows, into a migrated database)
       entitlements_bench.py activate HOST:PORT[,HOST:PORT...]      (activation throughput, calls spread in turn)
       entitlements_bench.py explain HOST:PORT SERVER_LOG            (one common and one rare search; prints the plans
                                                                      PostgreSQL's auto_explain logged for their statements)
(env ENTITLEMENTS=2000 ACTIVATIONS=1000000 SAMPLES=200 ACTIVATE=5000 CONCURRENCY=32)
"""
import os
import random
import sqlite3
import statistics
import sys
import time
import uuid

ENTITLEMENTS = int(os.environ.get("ENTITLEMENTS", 2000))
ACTIVATIONS = int(os.environ.get("ACTIVATIONS", 1_000_000))
SAMPLES = int(os.environ.get("SAMPLES", 200))
ACTIVATE = int(os.environ.get("ACTIVATE", 5000))
CONCURRENCY = int(os.environ.get("CONCURRENCY", 32))
ORG = "org-bench"
PRODUCTS = [(f"P{i:02d}", name) for i, name in enumerate(["Nexus Core", "Vision Edge", "Suite Pro", "Atlas Cloud", "Orbit Sync",
                                                        "Pulse Analytics", "Forge Build", "Harbor Storage", "Beacon Alerts",
                                                        "Summit Identity", "Quartz Reports", "Meridian Mesh"])]
PROJECTS = ["Apollo", "Gemini", "Mercury", "Artemis", "Voyager", "Pioneer", "Viking", "Skylab"]
MANAGERS = ["Grace Hopper", "Margaret Hamilton", "Katherine Johnson", "Dorothy Vaughan", "Mary Jackson"]
START_MS = 1_700_000_000_000


def populate(path):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    if db.execute("SELECT COUNT(*) FROM activations").fetchone()[0] >= ACTIVATIONS:
        print("# already populated")
        return
    started = time.perf_counter()
    rng = random.Random(3)
    db.executemany("INSERT OR REPLACE INTO products VALUES (?, ?, 'Subscription', ?, 'Cloud', 0)",
                   [(pid, name, f"{name} licenses") for pid, name in PRODUCTS])
    lines = {}
    for e in range(ENTITLEMENTS):
        eid = f"ENT-{e:05d}"
        db.execute("INSERT INTO entitlements (id, org_id, sales_order, po_number, order_date, expiration_date, transferred_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (eid, ORG, f"SO-{rng.randrange(10**7):07d}", f"PO-{e:05d}", START_MS + e * 3_600_000,
                    None if e % 4 == 0 else START_MS + (e + 5000) * 86_400_000, START_MS))
        for position, (pid, _) in enumerate(rng.sample(PRODUCTS, 3)):
            lines[(eid, pid)] = [position, 1000, 0]
    keys = list(lines)

    def rows():
        for i in range(ACTIVATIONS):
            eid, pid = keys[i % len(keys)]
            lines[(eid, pid)][2] += 1
            name = dict(PRODUCTS)[pid]
            row = (f"act_{i:08d}", ORG, eid, pid, name, 1, rng.choice(PROJECTS) + f" {i % 97}", rng.choice(MANAGERS),
                   f"SN-{i:08d}" if i % 2 else "", "Ada Lovelace", "mem_ada", START_MS + i * 1000, f"bench-{i}")
            # The service's search document: the searchable columns, lowercased, joined by char(1).
            yield row + ("\x01".join([row[4], row[6], row[7], row[9], row[8], row[2]]).lower(),)

    db.executemany("""INSERT INTO activations (id, org_id, entitlement_id, product_id, product_name, quantity, project_name,
                      project_manager, serial_number, activated_by, activated_by_member_id, activated_at, idempotency_key,
                      search_doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows())
    db.executemany("INSERT INTO entitlement_lines VALUES (?, ?, ?, ?, ?)",
                   [(eid, pid, pos, avail, act) for (eid, pid), (pos, avail, act) in lines.items()])
    # Keep each entitlement's listing columns true, as its transfer would have.
    db.execute("""UPDATE entitlements SET
        first_product_name = (SELECT p.name FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                              WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1),
        first_product_description = (SELECT p.description FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                                     WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1),
        total_available = (SELECT SUM(l.available) FROM entitlement_lines l WHERE l.entitlement_id = entitlements.id)""")
    # Keep the service's per-product totals true, as its transfers and activations would have.
    db.execute("""INSERT OR REPLACE INTO product_totals
                  SELECT e.org_id, l.product_id, SUM(l.available), SUM(l.activated),
                         (SELECT COUNT(*) FROM activations a WHERE a.org_id = e.org_id AND a.product_id = l.product_id)
                  FROM entitlement_lines l JOIN entitlements e ON e.id = l.entitlement_id GROUP BY e.org_id, l.product_id""")
    db.commit()
    print(f"# populated {ENTITLEMENTS:,} entitlements and {ACTIVATIONS:,} activations in {time.perf_counter() - started:.1f} s")


def percentiles(durations):
    ordered = sorted(durations)
    return f"p50 {statistics.median(ordered):7.2f} ms  p99 {ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]:7.2f} ms"


def measure(address, pid):
    import grpc
    sys.path.insert(0, os.environ["STUBS"])
    from portal.entitlements.v1 import entitlements_pb2 as E
    from portal.entitlements.v1 import entitlements_pb2_grpc as G
    from google.protobuf.timestamp_pb2 import Timestamp
    stub = G.EntitlementsServiceStub(grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]))
    rng = random.Random(5)

    def timed(call):
        for _ in range(10):
            call()
        durations = []
        for _ in range(SAMPLES):
            started = time.perf_counter()
            call()
            durations.append((time.perf_counter() - started) * 1000)
        return percentiles(durations)

    acts = lambda **kw: stub.ListActivations(E.ListActivationsRequest(organization_id=ORG, page_size=50, **kw), timeout=30)
    print(f"# entitlements benchmark: {ENTITLEMENTS:,} entitlements, {ACTIVATIONS:,} activations in one organization")
    print("activations: first page (date desc)      ", timed(lambda: acts()))
    tokens, response = [], acts(order_by="activation_date asc")
    for _ in range(40):
        tokens.append(response.next_page_token)
        response = acts(order_by="activation_date asc", page_token=response.next_page_token)
    print("activations: deep pages (keyset)         ", timed(lambda: acts(order_by="activation_date asc", page_token=rng.choice(tokens))))
    print("activations: by product                  ", timed(lambda: acts(product_ids=[rng.choice(PRODUCTS)[0]])))
    print("activations: sort by project name        ", timed(lambda: acts(order_by=rng.choice(["project_name asc", "project_manager desc", "quantity desc"]))))
    def day():
        first = (START_MS // 1000) + rng.randrange(ACTIVATIONS)
        return acts(activation_date_start=Timestamp(seconds=first), activation_date_end=Timestamp(seconds=first + 86_400))
    print("activations: one day's window            ", timed(day))
    print("activations: search, common (\"apollo\")   ", timed(lambda: acts(search_text="apollo")))
    print("activations: search, rare (a serial)     ", timed(lambda: acts(search_text=f"SN-{rng.randrange(ACTIVATIONS // 2) * 2 + 1:08d}")))
    ents = lambda **kw: stub.ListEntitlements(E.ListEntitlementsRequest(organization_id=ORG, **{"page_size": 50, **kw}), timeout=30)
    print("entitlements: first page                 ", timed(lambda: ents()))
    print("entitlements: sort by any column         ", timed(lambda: ents(order_by=rng.choice(["product_name asc", "total_available_licenses desc", "expiration_date asc", "status desc", "sales_order asc"]))))
    print("entitlements: search sales order         ", timed(lambda: ents(search_field=E.ENTITLEMENT_SEARCH_FIELD_SALES_ORDER, search_text=str(rng.randrange(10)))))
    print("products: list                           ", timed(lambda: stub.ListProducts(E.ListProductsRequest(organization_id=ORG), timeout=30)))
    print("summary with 5 recent                    ", timed(lambda: stub.GetSummary(E.GetSummaryRequest(organization_id=ORG, recent_activations_limit=5), timeout=30)))

    def rss():
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

    before, peak, rows, size = rss(), 0, 0, 0
    started = time.perf_counter()
    for chunk in stub.ExportActivationsCsv(E.ExportActivationsCsvRequest(organization_id=ORG), timeout=600):
        size += len(chunk.chunk)
        rows += chunk.chunk.count(b"\r\n")
        peak = max(peak, rss())
    elapsed = time.perf_counter() - started
    print(f"export: {rows - 1:,} rows, {size / 1e6:.1f} MB in {elapsed:.2f} s (target < 5 s); server RSS {before / 1024:.1f} MiB before, "
          f"peak {peak / 1024:.1f} MiB (+{(peak - before) / 1024:.1f} MiB; target < 50 MB growth)")

    elapsed = activate(address)
    print(f"activate: {ACTIVATE:,} acknowledged activations in {elapsed:.2f} s = {ACTIVATE / elapsed:,.0f}/s "
          f"({CONCURRENCY} in flight; target > 2,000/s)")


def copy_to_postgres(path, url):
    """Streams the populated SQLite rows into a PostgreSQL database the service has migrated."""
    import subprocess
    db = sqlite3.connect(path)
    tables = {
        "products": "id, name, license_type, description, deployment_type, updated_at",
        "entitlements": "id, org_id, sales_order, po_number, order_date, expiration_date, transferred_at, expiry_recorded_at, "
                        "first_product_name, first_product_description, total_available",
        "entitlement_lines": "entitlement_id, product_id, position, available, activated",
        "activations": "id, org_id, entitlement_id, product_id, product_name, quantity, project_name, project_manager, serial_number, "
                       "activated_by, activated_by_member_id, activated_at, idempotency_key, search_doc",
        "product_totals": "org_id, product_id, available, activated, activations",
    }
    started = time.perf_counter()
    for table, columns in tables.items():
        copy = subprocess.Popen(["psql", url, "-qc", f"\\copy {table} ({columns}) FROM STDIN WITH (FORMAT csv)"],
                                stdin=subprocess.PIPE, text=True)
        # CSV as PostgreSQL reads it: NULL unquoted and empty, every text quoted (so '' stays '').
        cell = lambda value: "" if value is None else str(value) if isinstance(value, int) else '"' + value.replace('"', '""') + '"'
        for row in db.execute(f"SELECT {columns} FROM {table} ORDER BY rowid"):
            copy.stdin.write(",".join(cell(value) for value in row) + "\n")
        copy.stdin.close()
        assert copy.wait() == 0, f"copying {table} failed"
    subprocess.run(["psql", url, "-qc", "VACUUM ANALYZE"], check=True)
    print(f"# copied into PostgreSQL in {time.perf_counter() - started:.0f} s")


def explain(address, log_path):
    """The plans of a common and a rare search's statements, as the server ran them (auto_explain)."""
    import grpc
    sys.path.insert(0, os.environ["STUBS"])
    from portal.entitlements.v1 import entitlements_pb2 as E
    from portal.entitlements.v1 import entitlements_pb2_grpc as G
    stub = G.EntitlementsServiceStub(grpc.insecure_channel(address))
    for label, text in (("common (\"apollo\")", "apollo"), ("rare (a serial)", "SN-00345679")):
        offset = os.path.getsize(log_path)
        stub.ListActivations(E.ListActivationsRequest(organization_id=ORG, page_size=50, search_text=text), timeout=30)
        time.sleep(0.5)  # the server writes its log line after answering
        with open(log_path, errors="replace") as log:
            log.seek(offset)
            entries = log.read().split("LOG:  duration: ")[1:]
        print(f"# plans of a search, {label}: the statements that read activations, as PostgreSQL ran them")
        for entry in entries:
            if "FROM activations" in entry and "search_doc" in entry:
                print("  duration: " + "\n  ".join(line for line in entry.strip().splitlines() if line.strip()))


def activate(addresses):
    """Seconds ACTIVATE acknowledged activations take with CONCURRENCY in flight, spread over `addresses` in turn."""
    import grpc
    sys.path.insert(0, os.environ["STUBS"])
    from portal.entitlements.v1 import entitlements_pb2 as E
    from portal.entitlements.v1 import entitlements_pb2_grpc as G
    stubs = [G.EntitlementsServiceStub(grpc.insecure_channel(address)) for address in addresses.split(",")]
    page = stubs[0].ListEntitlements(E.ListEntitlementsRequest(organization_id=ORG, page_size=500), timeout=30)
    lines = [(e.entitlement_id, line.product_id) for e in page.entitlements for line in e.lines
             if line.unactivated_licenses > 0 and e.status == E.ENTITLEMENT_STATUS_ACTIVE]
    metadata = [("x-portal-member-id", "mem_ada"), ("x-portal-display-name", "Ada Lovelace")]
    started = time.perf_counter()
    pending = []
    for i in range(ACTIVATE):
        eid, pid_ = lines[i % len(lines)]
        pending.append(stubs[i % len(stubs)].Activate.future(E.ActivateRequest(
            organization_id=ORG, entitlement_id=eid, product_id=pid_, quantity=1, project_name="Throughput",
            project_manager="Grace Hopper", idempotency_key=uuid.uuid4().hex), metadata=metadata, timeout=120))
        if len(pending) >= CONCURRENCY:
            pending.pop(0).result()
    for future in pending:
        future.result()
    return time.perf_counter() - started


if __name__ == "__main__":
    if sys.argv[1] == "populate":
        populate(sys.argv[2])
    elif sys.argv[1] == "copy-to-postgres":
        copy_to_postgres(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "explain":
        explain(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "activate":
        elapsed = activate(sys.argv[2])
        print(f"activate: {ACTIVATE:,} acknowledged activations over {len(sys.argv[2].split(','))} instance(s) = {ACTIVATE / elapsed:,.0f}/s "
              f"({CONCURRENCY} in flight)")
    else:
        measure(sys.argv[2], int(sys.argv[3]))
