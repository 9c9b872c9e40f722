"""PostgreSQL stopped and started again while activations stream in.

An entitlements and an audit service share a PostgreSQL cluster of this test's own (`scripts/postgres`);
callers activate licenses without pause while the cluster is stopped (fast shutdown: connections are
terminated) and, seconds later, started again. Proved here: while the database is down both services
report themselves not ready (`/readyz` 503 "database unavailable", gRPC health NOT_SERVING); a call
whose connection broke fails with UNAVAILABLE, a call made while the database is down fails at once
with UNAVAILABLE, and a call that was waiting for a connection completes once the database is back
(nothing ends any other way); once it is back the pool reconnects and calls succeed without a restart; every acknowledged activation is stored, and every
call retried with its idempotency key finds its activation or makes it exactly once; the outbox hands
each activation to the audit log exactly once (none lost across the outage, none recorded twice) and
the organization's hash chain is unbroken.

Runs with the PostgreSQL suite (PORTAL_TEST_BACKEND=postgres).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import support

pytestmark = pytest.mark.skipif(support.backend() != "postgres", reason="restarts a PostgreSQL cluster")

P = support.protos()
E, A = P.entitlements, P.audit
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"
ORGANIZATION = "org-restart"
ACTOR = [("x-portal-member-id", "mem_ada"), ("x-portal-display-name", "Ada Lovelace")]
CALLERS = 12
CALL_TIMEOUT = 20


class Cluster:
    """A PostgreSQL cluster in a folder of its own (under /tmp, where its server user can reach it)."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="portal-restart-postgres.", dir="/tmp")
        self.port = support.free_port()

    def start(self) -> str:
        return subprocess.run([str(SCRIPT), "start", self.directory, str(self.port)], check=True, capture_output=True,
                              text=True, timeout=120).stdout.strip()

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", self.directory], check=True, capture_output=True, timeout=60)

    def database(self, server_url: str, name: str) -> str:
        parts = urllib.parse.urlsplit(server_url)
        subprocess.run(["psql", urllib.parse.urlunsplit(parts._replace(query="")), "-qc", f"CREATE DATABASE {name}"],
                       check=True, capture_output=True)
        return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def psql(url: str, sql: str) -> list[list[str]]:
    server = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(query=""))
    out = subprocess.run(["psql", server, "-AtF", "\t", "-c", sql], capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def readiness(admin_port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def serving(channel: grpc.Channel) -> bool:
    return support.health_check(channel).status == P.health.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("postgres-restart")
    cluster = Cluster()
    processes, channels = [], []
    try:
        server = cluster.start()
        databases = {name: cluster.database(server, f"restart_{name}") for name in ("audit", "entitlements")}
        audit_admin, entitlements_admin = support.free_port(), support.free_port()
        audit = support.ServerProcess(
            [portal_bin, "audit", "--data-dir", str(root / "audit"), "--database", databases["audit"],
             "--admin-port", str(audit_admin)], "audit", root / "logs").start()
        processes.append(audit)
        entitlements = support.ServerProcess(
            [portal_bin, "entitlements", "--data-dir", str(root / "entitlements"), "--database", databases["entitlements"],
             "--audit-address", audit.address, "--admin-port", str(entitlements_admin)], "entitlements", root / "logs").start()
        processes.append(entitlements)
        audit_channel, entitlements_channel = support.make_channel(audit.port), support.make_channel(entitlements.port)
        channels += [audit_channel, entitlements_channel]
        yield {
            "cluster": cluster, "databases": databases, "admin_ports": (audit_admin, entitlements_admin),
            "processes": (audit, entitlements), "channels": (audit_channel, entitlements_channel),
            "entitlements": P.entitlements_grpc.EntitlementsServiceStub(entitlements_channel),
            "audit": P.audit_grpc.AuditServiceStub(audit_channel),
        }
    finally:
        support.stop_all(processes, channels)
        cluster.remove()


def test_postgres_restart_under_load_loses_nothing(stack):
    stub, audit = stack["entitlements"], stack["audit"]
    product_id, entitlement_id = f"SKU-{uuid.uuid4().hex[:8]}", f"ENT-{uuid.uuid4().hex[:8]}"
    stub.UpsertProduct(E.UpsertProductRequest(product=E.Product(
        product_id=product_id, name="Restart Engine", license_type="Subscription", product_description="engine",
        deployment_type="Cloud")), timeout=CALL_TIMEOUT)
    stub.TransferEntitlement(E.TransferEntitlementRequest(
        entitlement_id=entitlement_id, organization_id=ORGANIZATION, sales_order="SO-RESTART",
        order_date=Timestamp(seconds=1_767_225_600), lines=[E.TransferLine(product_id=product_id, quantity=1_000_000)]),
        timeout=CALL_TIMEOUT)

    def activate(key: str) -> tuple[grpc.StatusCode, str]:
        try:
            response = stub.Activate(E.ActivateRequest(
                organization_id=ORGANIZATION, entitlement_id=entitlement_id, product_id=product_id, quantity=1,
                project_name="Restart", project_manager="Grace Hopper", idempotency_key=key),
                metadata=ACTOR, timeout=CALL_TIMEOUT)
            return grpc.StatusCode.OK, response.activation.activation_id
        except grpc.RpcError as error:
            return error.code(), error.details() or ""

    outcomes: dict[str, tuple[grpc.StatusCode, str]] = {}
    phase = {"name": "before"}
    by_phase: dict[str, Counter] = {"before": Counter(), "down": Counter(), "after": Counter()}
    lock = threading.Lock()
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            key = uuid.uuid4().hex
            code, detail = activate(key)
            with lock:
                outcomes[key] = (code, detail)
                by_phase[phase["name"]][code] += 1

    audit_admin, entitlements_admin = stack["admin_ports"]
    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        workers = [pool.submit(caller) for _ in range(CALLERS)]
        try:
            assert support.wait_until(lambda: sum(by_phase["before"].values()) >= 200, timeout=30), by_phase
            stack["cluster"].stop()
            stopped = time.monotonic()
            phase["name"] = "down"
            # Both services notice within a few checks, and say why.
            for port in (audit_admin, entitlements_admin):
                assert support.wait_until(lambda port=port: readiness(port)[0] == 503, timeout=10), readiness(port)
                assert readiness(port) == (503, "database unavailable\n")
            for channel in stack["channels"]:
                assert not serving(channel)
            noticed = time.monotonic() - stopped
            # A call made while the database is known to be down fails at once, naming the cause.
            for _ in range(5):
                started = time.monotonic()
                code, detail = activate(uuid.uuid4().hex)
                assert (code, time.monotonic() - started < 1) == (grpc.StatusCode.UNAVAILABLE, True), (code, detail)
                assert "database is unavailable" in detail
            stack["cluster"].start()
            for port in (audit_admin, entitlements_admin):
                assert support.wait_until(lambda port=port: readiness(port) == (200, "ready\n"), timeout=15), readiness(port)
            for channel in stack["channels"]:
                assert serving(channel)
            phase["name"] = "after"
            assert support.wait_until(lambda: by_phase["after"][grpc.StatusCode.OK] >= 200, timeout=30), by_phase
        finally:
            stop.set()
            for worker in workers:
                worker.result()

    print(f"outcomes by phase: {by_phase}; unavailable noticed {noticed:.1f} s after the stop")
    codes = Counter(code for code, _ in outcomes.values())
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    unavailable = [detail for code, detail in outcomes.values() if code == grpc.StatusCode.UNAVAILABLE]
    assert all("database is unavailable" in detail for detail in unavailable), Counter(unavailable)
    # A call after the outage succeeds without anything restarted, as every call in the last phase did.
    assert by_phase["after"][grpc.StatusCode.UNAVAILABLE] == 0, by_phase

    # Calls that failed are retried with their keys: each finds the activation it made or makes it now.
    for key, (code, _) in list(outcomes.items()):
        if code != grpc.StatusCode.OK:
            outcomes[key] = activate(key)
            assert outcomes[key][0] == grpc.StatusCode.OK, outcomes[key]
    acknowledged = {activation_id for _, activation_id in outcomes.values()}
    assert len(acknowledged) == len(outcomes)

    database = stack["databases"]["entitlements"]
    stored = {row[0] for row in psql(database, f"SELECT id FROM activations WHERE entitlement_id = '{entitlement_id}'")}
    assert stored == acknowledged, f"{len(stored - acknowledged)} stored but not acknowledged, {len(acknowledged - stored)} lost"
    line = psql(database, f"SELECT activated FROM entitlement_lines WHERE entitlement_id = '{entitlement_id}'")
    assert line == [[str(len(stored))]]

    # The outbox delivers each activation to the audit log exactly once.
    def recorded() -> Counter:
        rows = psql(stack["databases"]["audit"],
                    f"SELECT subject_id, count(*) FROM events WHERE org_id = '{ORGANIZATION}' AND subject_kind = '{A.SUBJECT_KIND_ACTIVATION}' GROUP BY subject_id")
        return Counter({subject: int(n) for subject, n in rows})

    assert support.wait_until(lambda: set(recorded()) >= stored, timeout=60), f"{len(stored - set(recorded()))} not in the audit log"
    events = recorded()
    assert set(events) == stored
    assert max(events.values()) == 1, [subject for subject, n in events.items() if n > 1][:5]
    chain = audit.VerifyChain(A.VerifyChainRequest(organization_id=ORGANIZATION), timeout=CALL_TIMEOUT)
    assert chain.ok, chain
    assert chain.events_checked == len(stored) + 1  # and the transfer's event

    for process, channel in zip(stack["processes"], stack["channels"]):
        assert process.proc.poll() is None, process.describe()
        assert serving(channel)
