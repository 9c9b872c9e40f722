"""Grows `portal dev`'s demo organization (Northwind Robotics) to ACTIVATIONS activations and EVENTS audit
events, for the web benchmark's large data set. Cached: a data directory already grown to those sizes is
left as it is (`web-bench-grown.json` records what was done and how long it took); an interrupted growth
resumes.

    grow.py DATA_DIR --portal BIN [--port-base 50180] [--activations 100000] [--events 1000000]

Steps:
1. `portal dev --data-dir DATA_DIR` seeds the demo (a fresh directory), and runs until its seeding has
   settled: every outbox delivered and the expired demo entitlement's expiry recorded (the expiry sweeper
   runs a minute after start), so the organization's audit history is complete before it grows.
2. The new activations are planned from the seeded entitlements (deterministically, so a resumed growth
   plans the same ones): dated within each entitlement's life (order date to its expiration, or to the
   seed time), by Ada or Katherine (the Admins), with the lines' available licenses raised so that about
   80% of them are activated.
3. Through the audit service's AppendEvents RPC (batches of 1,000, the hash chain extended by the service
   itself; loopback needs no internal credential and the events carry no caller metadata), appended in
   time order (two batches in flight, so neighbouring batches may land either way round): one `Activated …` event per planned activation (same id, time, user, product, project and
   quantity as the row), one `Added N licenses to entitlement …` per raised entitlement (what a transfer
   raising quantities records), and members' comings and goings up to EVENTS: people invited, reminded,
   revoked, accepted, changed and deleted again, so none of them is a member today, as identity holds.
   Then VerifyChain checks the organization's chain.
4. `portal dev` stops, and the planned activations go straight into entitlements.sqlite in one
   transaction, as `bench/entitlements_bench.py populate` does: the rows with their search document (the
   search index follows through its trigger), the raised lines' `available` and `activated` counts, the
   entitlements' listing columns and the per-product totals — every derived number as the service keeps it.

The grown history is dated before the seed (the entitlements' order dates are in the past), while the
seed's own events — the organization's creation among them — carry the time it ran: the log's newest
page is the seed's, as in the demo data set, and the grown history lies behind it.
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import sqlite3
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from portal_dev import PortalDev, log, read_only, stubs  # noqa: E402

MARKER = "web-bench-grown.json"
STATE = "web-bench-grow-state.json"
KEY_PREFIX = "web-bench-"          # idempotency keys of the inserted activations
DAY = 86_400_000
UTILISATION = 0.8                  # activated / available on each line after growing
BATCH = 1000                       # AppendEvents' most events per call

SITES = ["Harbor", "Atrium", "Line 3", "Line 5", "Pier 9", "North Campus", "South Campus", "Warehouse 2", "Lab B",
         "Riverside", "Main Hall", "Depot", "Annex", "Tower A", "Tower C", "Plant 4", "Dock 12", "Studio 1"]
SYSTEMS = ["Control Room", "AV Refresh", "Vision QA", "Access Gates", "Signage", "Paging", "Camera Wall", "Robot Cell",
           "Conveyor Safety", "Visitor Desk", "Boardroom", "Training Rooms", "Fleet Yard", "Clean Room"]
MANAGERS = ["Grace Hopper", "Katherine Johnson", "Margaret Hamilton", "Dorothy Vaughan", "Mary Jackson", "Annie Easley",
            "Evelyn Boyd", "Frances Allen", "Jean Sammet", "Radia Perlman"]
FIRST = ["Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Rowan", "Sasha",
         "Noor", "Mina", "Ravi", "Lena", "Tomas", "Ines", "Kenji", "Amara"]
LAST = ["Nguyen", "Garcia", "Okafor", "Larsen", "Silva", "Kowalski", "Haddad", "Moreau", "Tanaka", "Fischer",
        "Rossi", "Novak", "Costa", "Ivanova", "Mensah", "Olsen", "Reyes", "Sato", "Weber", "Yilmaz"]


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------- facts

def settle(dev: PortalDev, organization: str, timeout: float = 180) -> None:
    """Waits until the seeding's audit events are all recorded: no outbox row undelivered and every
    entitlement past its expiration marked as recorded (the sweeper's first pass is a minute after start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with read_only(dev.data_dir / "entitlements.sqlite") as ent, read_only(dev.data_dir / "identity.sqlite") as ident:
            pending = ent.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0] + \
                ident.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]
            unrecorded = ent.execute("""SELECT COUNT(*) FROM entitlements WHERE org_id = ? AND expiration_date <= ?
                                        AND expiry_recorded_at IS NULL""", (organization, now_ms())).fetchone()[0]
        if pending == 0 and unrecorded == 0:
            return
        time.sleep(1)
    raise RuntimeError(f"the seeding did not settle within {timeout:.0f} s (undelivered outbox rows or an unrecorded expiry)")


def facts(data_dir: Path, organization: str, existing_events: int) -> dict:
    """What the plan is made from, read from the seeded databases (kept in the state file, so a resumed growth
    plans from the same seed even after step 4 changed the lines)."""
    with read_only(data_dir / "entitlements.sqlite") as ent, read_only(data_dir / "identity.sqlite") as ident:
        lines = [dict(zip(["entitlement_id", "product_id", "available", "activated", "product_name", "order_date", "expiration_date"], row))
                 for row in ent.execute("""
                     SELECT l.entitlement_id, l.product_id, l.available, l.activated, p.name, e.order_date, e.expiration_date
                     FROM entitlement_lines l JOIN entitlements e ON e.id = l.entitlement_id JOIN products p ON p.id = l.product_id
                     WHERE e.org_id = ? ORDER BY l.entitlement_id, l.position""", (organization,))]
        seeded = ent.execute(f"SELECT COUNT(*), MAX(activated_at) FROM activations WHERE org_id = ? AND idempotency_key NOT LIKE '{KEY_PREFIX}%'",
                             (organization,)).fetchone()
        admins = [dict(zip(["member_id", "name"], row)) for row in ident.execute(
            "SELECT id, first_name || ' ' || last_name FROM members WHERE org_id = ? AND role = 'ADMIN' ORDER BY email", (organization,))]
    if not lines or not admins or not seeded[0]:
        raise RuntimeError(f"{data_dir} holds no seeded demo organization {organization}")
    return {"organization": organization, "lines": lines, "seeded_activations": seeded[0], "seed_time": seeded[1],
            "existing_events": existing_events, "admins": admins}


# ---------------------------------------------------------------------------------------------- the plan

def plan_activations(f: dict, total: int) -> tuple[list[tuple], dict]:
    """The activations to insert, oldest first, as rows of the activations table (without seq), and each
    line's new available count."""
    rng = random.Random(2026)
    seed_time = f["seed_time"]
    projects = [(f"{site} {system}", rng.choice(MANAGERS)) for site in SITES for system in SYSTEMS]
    windows = []
    for line in f["lines"]:
        start = line["order_date"] + DAY                               # after the raise recorded at order date + 1 h
        end = min(line["expiration_date"] or seed_time, seed_time) - 60_000
        windows.append((start, end))
    # An entitlement that has expired took fewer activations in its life than its length suggests.
    weights = [max(0, end - start) * (0.3 if (line["expiration_date"] or seed_time) < seed_time else 1)
               for (start, end), line in zip(windows, f["lines"])]
    count = total - f["seeded_activations"]
    picks = rng.choices(range(len(f["lines"])), weights=weights, k=count)
    rows = []
    for i, index in enumerate(picks):
        line = f["lines"][index]
        start, end = windows[index]
        admin = f["admins"][0] if rng.random() < 0.7 else f["admins"][-1]
        quantity = rng.choices([1, 2, 3, 4, 5, 10], weights=[55, 20, 10, 6, 5, 4])[0]
        project, manager = rng.choice(projects)
        serial = f"NW-{rng.randrange(100_000, 1_000_000)}" if rng.random() < 0.5 else ""
        rows.append([f"act_{rng.getrandbits(128):032x}", f["organization"], line["entitlement_id"], line["product_id"],
                     line["product_name"], quantity, project, manager, serial, admin["name"], admin["member_id"],
                     rng.randrange(start, end), f"{KEY_PREFIX}{i}"])
    rows.sort(key=lambda row: (row[11], row[0]))
    for row in rows:
        # The service's search document: the searchable columns, lowercased, joined by char(1).
        row.append("\x01".join([row[4], row[6], row[7], row[9], row[8], row[2]]).lower())
    activated = {}
    for row in rows:
        activated[(row[2], row[3])] = activated.get((row[2], row[3]), 0) + row[5]
    available = {}
    for line in f["lines"]:
        key = (line["entitlement_id"], line["product_id"])
        needed = line["activated"] + activated.get(key, 0)
        available[key] = max(line["available"], int(math.ceil(needed / UTILISATION / 10) * 10))
    return [tuple(row) for row in rows], available


def plan_events(f: dict, activations: list[tuple], available: dict, total: int):
    """The events to append, in time order: a generator of audit NewEvent field tuples
    (event_id, time_ms, type, action, message, user, actor_member_id, subject_kind, subject_id)."""
    org, seed_time = f["organization"], f["seed_time"]
    raises = {}
    for line in f["lines"]:
        added = available[(line["entitlement_id"], line["product_id"])] - line["available"]
        if added:
            raises.setdefault(line["entitlement_id"], [line["order_date"] + 3_600_000, 0])[1] += added
    rng = random.Random(7)
    raise_events = sorted((at, str(uuid.UUID(int=rng.getrandbits(128), version=4)), 2, 7,
                           f"Added {added} licenses to entitlement {eid}", "system", "", 4, eid)
                          for eid, (at, added) in raises.items())
    fill = total - f["existing_events"] - len(activations) - len(raise_events)
    if fill < 0:
        raise RuntimeError(f"{total:,} events cannot hold the {len(activations):,} activations' events")
    first = min([line["order_date"] for line in f["lines"]] + [row[11] for row in activations[:1]])

    def activation_events():
        erng = random.Random(11)
        for row in activations:
            quantity, product, project = row[5], row[4], row[6]
            yield (row[11], str(uuid.UUID(int=erng.getrandbits(128), version=4)), 3, 9,
                   f"Activated {quantity} {'license' if quantity == 1 else 'licenses'} of {product} for project {project}",
                   row[9], row[10], 5, row[0])

    def member_events():
        """People coming and going: invited (perhaps reminded), then revoked, or accepted, changed and deleted."""
        mrng = random.Random(13)
        step = (seed_time - 120_000 - first) / max(fill, 1)
        emitted, person = 0, 0
        while emitted < fill:
            person += 1
            name = f"{mrng.choice(FIRST)} {mrng.choice(LAST)}"
            email = f"{name.lower().replace(' ', '.')}{person}@northwind.example"
            role, other = ("Admin", "Viewer") if mrng.random() < 0.2 else ("Viewer", "Admin")
            admin = mrng.choice(f["admins"])
            invite = f"inv_{mrng.getrandbits(128):032x}"
            member = f"mem_{mrng.getrandbits(128):032x}"
            story = [(1, f"Invited {email} as {role}", admin, 3, invite)]
            story += [(2, f"Resent the invite to {email}", admin, 3, invite)] * mrng.choice([0, 0, 1, 2])
            if mrng.random() < 0.2:
                story.append((3, f"Revoked the invite to {email}", mrng.choice(f["admins"]), 3, invite))
            else:
                story.append((4, f"{name} ({email}) accepted the invite and joined as {role}", {"name": name, "member_id": member}, 2, member))
                for _ in range(mrng.choice([0, 1, 1, 2, 3])):
                    change = mrng.choice([f"role from {role} to {other}", f"phone to +1 555 {mrng.randrange(1000, 10000)}", "removed the phone"])
                    if change.startswith("role"):
                        role, other = other, role
                    story.append((5, f"Changed {name}'s {change}", mrng.choice(f["admins"]), 2, member))
                story.append((6, f"Deleted {name} ({email})", mrng.choice(f["admins"]), 2, member))
            for action, message, actor, kind, subject in story:
                if emitted == fill:
                    return
                at = int(first + (emitted + mrng.random()) * step)
                yield (at, str(uuid.UUID(int=mrng.getrandbits(128), version=4)), 1, action, message, actor["name"],
                       actor["member_id"], kind, subject)
                emitted += 1

    for event in heapq.merge(raise_events, activation_events(), member_events(), key=lambda e: e[0]):
        at, event_id, *rest = event
        yield (event_id, at, *rest)


# ---------------------------------------------------------------------------------------------- steps

def append_events(dev: PortalDev, f: dict, events, state: dict, save) -> tuple[int, float]:
    """Appends the planned events in order, two batches in flight; resumes after `state['appended']`."""
    import grpc
    _, _, A, AG = stubs()
    from google.protobuf.timestamp_pb2 import Timestamp
    audit = AG.AuditServiceStub(grpc.insecure_channel(f"127.0.0.1:{dev.audit}", options=[("grpc.max_send_message_length", 64 << 20)]))
    done = state.get("appended", 0)
    started, sent, in_flight, batch = time.perf_counter(), 0, [], []
    report = time.monotonic() + 15

    def finish(oldest):
        nonlocal done
        future, size = oldest
        future.result()
        done += size
        state["appended"] = done
        save()

    for index, (event_id, at, etype, action, message, user, actor, kind, subject) in enumerate(events):
        if index < done:
            continue
        batch.append(A.NewEvent(event_id=event_id, organization_id=f["organization"], time=Timestamp(seconds=at // 1000, nanos=at % 1000 * 1_000_000),
                                event_type=etype, action=action, message=message, user=user, actor_member_id=actor,
                                subject_kind=kind, subject_id=subject))
        if len(batch) == BATCH:
            in_flight.append((audit.AppendEvents.future(A.AppendEventsRequest(events=batch), timeout=300), len(batch)))
            sent += len(batch)
            batch = []
            if len(in_flight) == 2:
                finish(in_flight.pop(0))
            if time.monotonic() > report:
                log(f"  ... {done:,} events appended ({sent / (time.perf_counter() - started):,.0f}/s)")
                report = time.monotonic() + 15
    if batch:
        in_flight.append((audit.AppendEvents.future(A.AppendEventsRequest(events=batch), timeout=300), len(batch)))
        sent += len(batch)
    while in_flight:
        finish(in_flight.pop(0))
    elapsed = time.perf_counter() - started
    verdict = audit.VerifyChain(A.VerifyChainRequest(organization_id=f["organization"]), timeout=600)
    if not verdict.ok:
        raise RuntimeError(f"the audit chain is broken at {verdict.first_broken_event_id}: {verdict.reason}")
    log(f"# audit chain verified: {verdict.events_checked:,} events")
    return sent, elapsed


def insert_activations(data_dir: Path, f: dict, rows: list[tuple], available: dict) -> bool:
    """Writes the planned activations and every number derived from them; False when already written."""
    db = sqlite3.connect(data_dir / "entitlements.sqlite")
    db.execute("PRAGMA journal_mode = WAL")
    org = f["organization"]
    if db.execute("SELECT 1 FROM activations WHERE org_id = ? AND idempotency_key = ?", (org, rows[0][12])).fetchone():
        db.close()
        return False
    with db:
        db.executemany("""INSERT INTO activations (id, org_id, entitlement_id, product_id, product_name, quantity, project_name,
                          project_manager, serial_number, activated_by, activated_by_member_id, activated_at, idempotency_key,
                          search_doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", rows)
        added = {}
        for row in rows:
            added[(row[2], row[3])] = added.get((row[2], row[3]), 0) + row[5]
        for (eid, pid), new_available in available.items():
            db.execute("""UPDATE entitlement_lines SET available = ?, activated = activated + ?
                          WHERE entitlement_id = ? AND product_id = ?""", (new_available, added.get((eid, pid), 0), eid, pid))
        # Each entitlement's listing columns, as a transfer raising quantities refreshes them.
        db.execute("""UPDATE entitlements SET
            first_product_name = COALESCE((SELECT p.name FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                                           WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1), ''),
            first_product_description = COALESCE((SELECT p.description FROM entitlement_lines l JOIN products p ON p.id = l.product_id
                                                  WHERE l.entitlement_id = entitlements.id ORDER BY lower(p.name), p.id LIMIT 1), ''),
            total_available = COALESCE((SELECT SUM(l.available) FROM entitlement_lines l WHERE l.entitlement_id = entitlements.id), 0)
            WHERE org_id = ?""", (org,))
        # The organization's per-product totals, recomputed from its lines and activations.
        db.execute("DELETE FROM product_totals WHERE org_id = ?", (org,))
        db.execute("""INSERT INTO product_totals (org_id, product_id, available, activated, activations)
                      SELECT e.org_id, l.product_id, SUM(l.available), SUM(l.activated),
                             (SELECT COUNT(*) FROM activations a WHERE a.org_id = e.org_id AND a.product_id = l.product_id)
                      FROM entitlement_lines l JOIN entitlements e ON e.id = l.entitlement_id
                      WHERE e.org_id = ? GROUP BY e.org_id, l.product_id""", (org,))
        # Nothing may contradict what the service itself keeps.
        bad = db.execute("""SELECT COUNT(*) FROM entitlement_lines l JOIN entitlements e ON e.id = l.entitlement_id WHERE e.org_id = ?
                            AND l.activated != (SELECT COALESCE(SUM(a.quantity), 0) FROM activations a
                                                WHERE a.entitlement_id = l.entitlement_id AND a.product_id = l.product_id)""",
                         (org,)).fetchone()[0]
        if bad:
            raise RuntimeError(f"{bad} entitlement lines' activated counts differ from their activations")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return True


def grow(data_dir, binary: str, port_base: int = 50180, activations: int = 100_000, events: int = 1_000_000) -> dict:
    """Grows DATA_DIR (seeding it first when empty); returns what `web-bench-grown.json` records."""
    data_dir = Path(data_dir)
    marker, state_path = data_dir / MARKER, data_dir / STATE
    if marker.exists():
        grown = json.loads(marker.read_text())
        if grown.get("activations") == activations and grown.get("events") == events:
            log(f"# {data_dir}: already grown to {activations:,} activations and {events:,} events (in {grown['seconds']['total']:.0f} s)")
            return grown
        raise RuntimeError(f"{data_dir} was grown to other sizes ({grown.get('activations')}, {grown.get('events')}); use another DATA_DIR")
    state = json.loads(state_path.read_text()) if state_path.exists() else {"seconds": {}}

    wall_before = state.get("wall", 0.0)
    started = time.perf_counter()

    def save():
        state["wall"] = wall_before + time.perf_counter() - started
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_path)

    seconds = state["seconds"]
    log(f"# growing {data_dir} to {activations:,} activations and {events:,} audit events")
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = not (data_dir / "demo-organization.txt").exists()
    dev = PortalDev(binary, data_dir, port_base)
    try:
        organization = dev.organization()
        if fresh:
            seconds["seed"] = round(time.perf_counter() - started, 1)
            save()
            log(f"# seeded {organization} in {seconds['seed']} s")
        if "facts" not in state:
            t = time.perf_counter()
            settle(dev, organization)
            seconds["settle"] = round(time.perf_counter() - t, 1)
            save()
            _, _, A, AG = stubs()
            import grpc
            audit = AG.AuditServiceStub(grpc.insecure_channel(f"127.0.0.1:{dev.audit}"))
            existing = audit.ListEvents(A.ListEventsRequest(organization_id=organization, page_size=1), timeout=60).total_size
            state["facts"] = facts(data_dir, organization, existing)
            save()
        f = state["facts"]
        t = time.perf_counter()
        rows, available = plan_activations(f, activations)
        seconds["plan"] = round(time.perf_counter() - t, 1)
        log(f"# planned {len(rows):,} activations ({sum(r[5] for r in rows):,} licenses) in {seconds['plan']} s")
        if not state.get("appended_all"):
            sent, elapsed = append_events(dev, f, plan_events(f, rows, available, events), state, save)
            seconds["audit_append"] = round(seconds.get("audit_append", 0) + elapsed, 1)
            state["appended_all"] = True
            save()
            log(f"# appended {sent:,} audit events in {elapsed:.1f} s ({sent / max(elapsed, 1e-9):,.0f}/s) through AppendEvents")
    finally:
        dev.stop()
    t = time.perf_counter()
    if insert_activations(data_dir, f, rows, available):
        seconds["activations_insert"] = round(time.perf_counter() - t, 1)
        log(f"# inserted {len(rows):,} activations in {seconds['activations_insert']} s")
    # Wall time of the whole growth (every run of an interrupted one): portal dev's starts and stops included.
    seconds["total"] = round(wall_before + time.perf_counter() - started, 1)
    grown = {"organization": f["organization"], "activations": activations, "events": events, "seconds": seconds,
             "inserted_activations": len(rows), "appended_events": events - f["existing_events"],
             "grown_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    marker.write_text(json.dumps(grown, indent=2) + "\n")
    state_path.unlink(missing_ok=True)
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("--portal", required=True, help="the portal binary (a release build)")
    parser.add_argument("--port-base", type=int, default=50180)
    parser.add_argument("--activations", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    grown = grow(args.data_dir, args.portal, args.port_base, args.activations, args.events)
    print(json.dumps(grown, indent=2))


if __name__ == "__main__":
    main()
