"""TLS to PostgreSQL: a server of its own with a certificate from `scripts/dev-certs`, and `portal`
services connecting with `sslmode=verify-full` (checked against the CA and the host), `require`
(encrypted, unchecked), and refusing a server its CA did not issue.

Runs with the PostgreSQL suite (PORTAL_TEST_BACKEND=postgres).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import support
from test_tls import ROOT, dev_certs

pytestmark = pytest.mark.skipif(support.backend() != "postgres", reason="the services use PostgreSQL only in the PostgreSQL suite")

P = support.protos()
A = P.audit


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A PostgreSQL server accepting TLS with a certificate for 127.0.0.1; yields (port, certificates)."""
    certs = dev_certs(tmp_path_factory.mktemp("pg-certs"))
    cluster = Path(tempfile.mkdtemp(prefix="portal-pg-tls-"))  # readable by the server's own user
    port = support.free_port()
    script = str(ROOT / "scripts" / "postgres")
    subprocess.run([script, "start", str(cluster), str(port), str(certs / "audit.crt"), str(certs / "audit.key")],
                   check=True, capture_output=True, text=True)
    try:
        yield port, certs
    finally:
        subprocess.run([script, "stop", str(cluster)], capture_output=True)
        shutil.rmtree(cluster, ignore_errors=True)


def database(port: int) -> str:
    name = f"tls_{support.free_port()}"
    subprocess.run(["psql", f"postgres://portal@127.0.0.1:{port}/postgres?sslmode=disable", "-qc", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    return name


def encrypted_connections(port: int, name: str) -> list[str]:
    """`t`/`f` for each connection to database `name`: whether it uses TLS."""
    out = subprocess.run(["psql", f"postgres://portal@127.0.0.1:{port}/postgres?sslmode=disable", "-Atc",
                          f"SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '{name}'"],
                         check=True, capture_output=True, text=True).stdout
    return out.split()


@pytest.mark.parametrize("mode", ["verify-full", "require"])
def test_services_reach_postgres_over_tls(server, portal_bin, start_server, tmp_path, mode):
    port, certs = server
    name = database(port)
    url = f"postgres://portal@127.0.0.1:{port}/{name}?sslmode={mode}"
    if mode == "verify-full":
        url += f"&sslrootcert={certs / 'ca.crt'}"
    audit = start_server([portal_bin, "audit", "--data-dir", str(tmp_path / "audit"), "--database", url])
    stub = P.audit_grpc.AuditServiceStub(support.make_channel(audit.port))
    stored = stub.AppendEvents(A.AppendEventsRequest(events=[A.NewEvent(
        event_id="over-tls", organization_id="org-tls", time={"seconds": 1_772_719_629}, event_type=A.EVENT_TYPE_MEMBERS,
        action=A.EVENT_ACTION_MEMBER_INVITED, message="Invited someone", user="Ada")]), timeout=10)
    assert stored.stored_count == 1
    connections = encrypted_connections(port, name)
    assert connections and set(connections) == {"t"}, connections


def test_verify_full_refuses_a_server_another_ca_issued(server, portal_bin, tmp_path):
    port, _ = server
    foreign = dev_certs(tmp_path / "foreign")
    url = f"postgres://portal@127.0.0.1:{port}/{database(port)}?sslmode=verify-full&sslrootcert={foreign / 'ca.crt'}"
    result = subprocess.run([portal_bin, "audit", "--data-dir", str(tmp_path / "audit"), "--port", str(support.free_port()),
                             "--database", url], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"database postgres://portal@127.0.0.1:{port}/" in result.stderr and "cannot connect" in result.stderr, result.stderr
    assert "certificate" in result.stderr.lower(), result.stderr
