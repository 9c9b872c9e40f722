"""The admin port of a `portal` service: Prometheus metrics of its calls, liveness and readiness
over plain HTTP, as a platform's scraper and probes use them."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

import grpc
import pytest

import support

AUDIT = "portal.audit.v1.AuditService"


def get(port: int, path: str) -> tuple[int, str]:
    """GETs `path` on the admin port; returns (HTTP status, body)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


samples = support.admin_samples


@pytest.fixture
def audit_with_admin_port(portal_bin, start_server, tmp_path):
    """`portal audit` with an admin port; returns (server, admin port)."""
    admin_port = support.free_port()
    server = start_server([portal_bin, "audit", "--data-dir", str(tmp_path / "audit-data"), "--admin-port", str(admin_port)])
    return server, admin_port


def test_metrics_count_calls_by_method_and_status_with_their_durations(audit_with_admin_port, pb):
    server, admin_port = audit_with_admin_port
    stub = pb.audit_grpc.AuditServiceStub(support.make_channel(server.port))
    for _ in range(3):
        stub.ListEvents(pb.audit.ListEventsRequest(organization_id="org-1"), timeout=5)
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListEvents(pb.audit.ListEventsRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    found = samples(admin_port)
    labels = {"service": AUDIT, "method": "ListEvents"}
    assert found[("portal_rpc_calls_total", frozenset({**labels, "code": "OK"}.items()))] == 3
    assert found[("portal_rpc_calls_total", frozenset({**labels, "code": "INVALID_ARGUMENT"}.items()))] == 1
    assert found[("portal_rpc_call_duration_seconds_count", frozenset(labels.items()))] == 4
    assert found[("portal_rpc_call_duration_seconds_sum", frozenset(labels.items()))] > 0
    assert found[("portal_rpc_calls_in_flight", frozenset(labels.items()))] == 0
    # The startup health checks are counted too, under the standard service's name.
    health = {"service": "grpc.health.v1.Health", "method": "Check", "code": "OK"}
    assert found[("portal_rpc_calls_total", frozenset(health.items()))] >= 1


def test_metrics_time_the_database(audit_with_admin_port, pb):
    """Every read and transaction of the service's database: how long it waited for its connection, how long it ran."""
    server, admin_port = audit_with_admin_port
    before = samples(admin_port)
    stub = pb.audit_grpc.AuditServiceStub(support.make_channel(server.port))
    for _ in range(3):
        stub.ListEvents(pb.audit.ListEventsRequest(organization_id="org-1"), timeout=5)
    found = samples(admin_port)
    reads = frozenset({"database": "audit", "operation": "read"}.items())
    transactions = frozenset({"database": "audit", "operation": "transaction"}.items())
    assert found[("portal_db_duration_seconds_count", reads)] >= before[("portal_db_duration_seconds_count", reads)] + 3
    assert found[("portal_db_wait_seconds_count", reads)] == found[("portal_db_duration_seconds_count", reads)]
    assert found[("portal_db_duration_seconds_sum", reads)] > 0
    assert found[("portal_db_duration_seconds_count", transactions)] >= 1  # the migrations at startup


def test_liveness_readiness_and_unknown_paths(audit_with_admin_port):
    _, admin_port = audit_with_admin_port
    assert get(admin_port, "/healthz") == (200, "ok\n")
    assert get(admin_port, "/readyz") == (200, "ready\n")
    status, body = get(admin_port, "/nowhere")
    assert status == 404 and "/metrics" in body


def test_the_clock_moves_only_on_a_service_run_with_a_testing_clock(audit_with_admin_port, portal_bin, start_server, tmp_path):
    """`POST /testing/clock` is refused by a service run normally; one run with `--testing-clock`
    moves its clock, and `--testing-clock` without an admin port is a usage error."""
    _, plain_admin_port = audit_with_admin_port
    request = urllib.request.Request(f"http://127.0.0.1:{plain_admin_port}/testing/clock?advance_ms=1000", method="POST", data=b"")
    try:
        urllib.request.urlopen(request, timeout=5)
        pytest.fail("a service without a testing clock moved its clock")
    except urllib.error.HTTPError as error:
        assert error.code == 405
    clock_args, admin_port = support.testing_clock_args()
    start_server([portal_bin, "audit", "--data-dir", str(tmp_path / "clocked-audit-data"), *clock_args])
    support.advance_clock(admin_port, 3600)
    refused = subprocess.run([portal_bin, "audit", "--data-dir", str(tmp_path / "other"), "--testing-clock"], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "--testing-clock" in refused.stderr


def test_readiness_turns_503_while_the_server_drains(test_server_bin, start_server, pb):
    """On SIGTERM the server stops being ready at once while an in-flight call still drains (and
    completes); liveness stays 200 meanwhile."""
    admin_port = support.free_port()
    server = start_server([test_server_bin, "--admin-port", str(admin_port)])
    assert get(admin_port, "/readyz")[0] == 200
    stub = pb.echo_grpc.EchoStub(support.make_channel(server.port))
    slow = stub.Get.future(pb.echo.EchoRequest(message="draining", delay_ms=2000), timeout=10)
    time.sleep(0.3)  # the call is in flight
    server.terminate()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and get(admin_port, "/readyz")[0] != 503:
        time.sleep(0.05)
    assert get(admin_port, "/readyz") == (503, "shutting down\n")
    assert get(admin_port, "/healthz")[0] == 200
    assert slow.result().message == "draining"
    assert server.wait_exit() == 0


def test_outbox_backlog_and_age_show_an_unreachable_receiver(portal_bin, start_server, tmp_path, pb):
    """With the audit service unreachable, identity's audit events wait in its outbox: the backlog
    and the age of the oldest show it, while invite mail (spooled) drains to zero."""
    admin_port = support.free_port()
    server = start_server([portal_bin, "identity", "--data-dir", str(tmp_path / "identity-data"), "--admin-port", str(admin_port),
                           "--audit-address", f"127.0.0.1:{support.free_port()}"])
    stub = pb.identity_grpc.IdentityServiceStub(support.make_channel(server.port))
    stub.CreateOrganization(pb.identity.CreateOrganizationRequest(
        name="Backlog Co", first_admin_email="ada@backlog.example.com", idempotency_key="backlog-1"), timeout=5)

    def backlog() -> tuple[float, float, float]:
        found = samples(admin_port)
        return (found.get(("portal_outbox_backlog", frozenset({"topic": "audit"}.items())), -1),
                found.get(("portal_outbox_oldest_age_seconds", frozenset({"topic": "audit"}.items())), -1),
                found.get(("portal_outbox_backlog", frozenset({"topic": "mail"}.items())), -1))

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (backlog()[0] >= 1 and backlog()[1] > 0 and backlog()[2] == 0):
        time.sleep(0.2)
    audit_waiting, oldest_age, mail_waiting = backlog()
    assert audit_waiting >= 1, "the audit events should wait in the outbox"
    assert oldest_age > 0
    assert mail_waiting == 0, "the invite mail should have been spooled"
