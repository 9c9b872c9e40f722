"""The dashboard and alerts in deploy/observability against what the services really export.

Every metric and label the Grafana dashboard and the Prometheus rules query is scraped from the four
services' admin ports (over mutual TLS, after a real activation crossed every hop), so a renamed
metric or label breaks this test instead of an empty panel or an alert that can never fire. The
certificate expiry gauge is checked against the certificates' own `notAfter`. The rules themselves
are unit-tested with promtool in Tests/Deploy.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
import yaml

import support
from test_tls import T, TLSStack, certs, sign_up, unique  # noqa: F401 (certs: the fixture)

P = support.protos()
G, E = P.gateway, P.entitlements
ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
PASSWORD = "correct horse battery staple"
# Labels Prometheus attaches to every scraped series itself.
TARGET_LABELS = {"job", "instance"}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "inf", "nan"}


# -- what the queries use


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target and every rule."""
    found = []
    dashboard = json.loads((OBSERVABILITY / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"dashboard panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"dashboard variable {variable['name']}", variable["definition"]))
    for group in yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            found.append((f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return found


def selectors(expr: str) -> tuple[list[tuple[str, set[str]]], set[str]]:
    """The series selectors of a PromQL expression as (metric name, label names matched), and the
    label names it groups or matches by (`by (…)`, `on (…)`, `label_values(…, label)`)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)
    grouping = set()
    clause = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)"
    for names in re.findall(clause, text):
        grouping |= {name.strip() for name in names.split(",") if name.strip()}
    text = re.sub(clause, " ", text)
    values = re.match(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", text)
    if values:
        grouping.add(values.group(2))
        text = values.group(1)
    found = []
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{([^}]*)\})?", text):
        name, rest = match.group(1), text[match.end():].lstrip()
        if name.lower() in PROMQL_KEYWORDS or (match.group(2) is None and rest.startswith("(")):
            continue
        matched = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", match.group(3) or ""))
        found.append((name, matched))
    return found, grouping


def test_the_query_reader_finds_selectors_and_groupings():
    """The check below is only as good as this reading of PromQL."""
    found, grouping = selectors(
        'histogram_quantile(0.99, sum by (job, method, le) (rate(portal_rpc_call_duration_seconds_bucket'
        '{job=~"$job", le="0.25"}[$__rate_interval]))) / on (job) portal_x - time() > 14 * 86400 and up == 0')
    assert found == [("portal_rpc_call_duration_seconds_bucket", {"job", "le"}), ("portal_x", set()), ("up", set())]
    assert grouping == {"job", "method", "le"}
    assert selectors('label_values(portal_rpc_calls_total{job=~"$job"}, instance)') == (
        [("portal_rpc_calls_total", {"job"})], {"instance"})


# -- what the services export


def scrape(port: int) -> dict[str, set[str]]:
    """Every sample name on an admin port's /metrics, with the label names it carries."""
    names: dict[str, set[str]] = {}
    for name, labels in support.admin_samples(port):
        names.setdefault(name, set()).update(label for label, _ in labels)
    return names


def sample_values(port: int, name: str) -> dict[frozenset, float]:
    """The values of one sample name on an admin port, by label set."""
    return {labels: value for (sample, labels), value in support.admin_samples(port).items() if sample == name}


class ObservedStack(TLSStack):
    """The mutual-TLS stack with an admin port on every service, each tracing to a collector that is
    not there (so the tracing metrics show spans dropped)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.admin_ports: dict[str, int] = {}
        self.collector = f"127.0.0.1:{support.free_port()}"

    def launch(self, service: str, *args: str, name: str | None = None) -> support.ServerProcess:
        if "--admin-port" in args:
            port = int(args[args.index("--admin-port") + 1])
        else:
            port = support.free_port()
            args = (*args, "--admin-port", str(port))
        self.admin_ports[name or service] = port
        return super().launch(service, *args, "--otlp-endpoint", self.collector, name=name)


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory, certs):
    """The four services after one activation has crossed every hop and reached the audit log."""
    started = ObservedStack(portal_bin, tmp_path_factory.mktemp("observed-stack"), certs)
    try:
        started.start()
        organization_id, email = sign_up(started)
        product_id, entitlement_id = unique("SKU-"), unique("ENT-")
        started.entitlements.UpsertProduct(E.UpsertProductRequest(product=E.Product(
            product_id=product_id, name="Observed Engine", license_type="Subscription", product_description="engine",
            deployment_type="Cloud")), timeout=T)
        started.entitlements.TransferEntitlement(E.TransferEntitlementRequest(
            entitlement_id=entitlement_id, organization_id=organization_id, sales_order=unique("SO-"),
            order_date=Timestamp(seconds=1_767_225_600),
            lines=[E.TransferLine(product_id=product_id, quantity=3)]), timeout=T)
        token = started.portal.Login(
            G.LoginRequest(organization_id=organization_id, email=email, password=PASSWORD), timeout=T).session_token
        auth = [("authorization", f"Bearer {token}")]
        project = unique("project-")
        started.portal.Activate(G.ActivateRequest(
            entitlement_id=entitlement_id, product_id=product_id, quantity=1, project_name=project, project_manager="Grace",
            idempotency_key=unique("key-")), metadata=auth, timeout=T)
        support.wait_until(lambda: list(started.portal.ListAuditEvents(
            G.ListAuditEventsRequest(search_text=project), metadata=auth, timeout=T).events), timeout=30, interval=0.2)
        yield started
    finally:
        started.stop()


def test_the_dashboard_and_alerts_query_only_metrics_and_labels_the_services_export(stack):
    exported: dict[str, set[str]] = {}
    for service, port in stack.admin_ports.items():
        for name, labels in scrape(port).items():
            exported.setdefault(name, set()).update(labels)
    recorded = {rule["record"] for group in yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]
                for rule in group["rules"] if "record" in rule}
    problems = []
    used = set()
    for where, expr in queries():
        found, grouping = selectors(expr)
        available = set(TARGET_LABELS)
        for name, matched in found:
            if name == "up" or name in recorded:
                available |= {"service"} if name in recorded else set()
                continue
            used.add(name)
            if name not in exported:
                problems.append(f"{where}: {name} is not exported")
                continue
            available |= exported[name]
            missing = matched - exported[name] - TARGET_LABELS
            if missing:
                problems.append(f"{where}: {name} has no label {sorted(missing)}")
        if grouping - available:
            problems.append(f"{where}: groups by {sorted(grouping - available)}, which its metrics do not carry")
    assert not problems, "\n".join(problems)
    # The check saw every family the dashboard is for.
    for family in ("portal_rpc_calls_total", "portal_rpc_call_duration_seconds_bucket", "portal_rpc_calls_in_flight",
                   "portal_connections_open", "portal_connections_accepted_total",
                   "portal_tls_handshake_failures_total", "portal_tls_certificate_expiry_timestamp_seconds",
                   "portal_outbox_backlog", "portal_outbox_oldest_age_seconds", "portal_db_wait_seconds_bucket",
                   "portal_db_duration_seconds_bucket", "portal_trace_spans_exported_total",
                   "portal_trace_spans_dropped_total"):
        assert family in used, f"the dashboard and alerts do not use {family}"


def test_every_service_exports_its_calls_and_the_backends_their_database(stack):
    for service, port in stack.admin_ports.items():
        samples = scrape(port)
        assert {"service", "method", "code"} <= samples["portal_rpc_calls_total"], service
        # The latency objective's alerts and panel read the 250 ms bucket by its exact label.
        assert ("le", "0.25") in set().union(*sample_values(port, "portal_rpc_call_duration_seconds_bucket")), service
        if service != "gateway":
            assert {"operation", "le"} <= samples["portal_db_wait_seconds_bucket"], service
    for service in ("identity", "entitlements"):
        assert "topic" in scrape(stack.admin_ports[service])["portal_outbox_oldest_age_seconds"], service


def not_after(certificate: Path) -> float:
    """A certificate's notAfter, in seconds since 1970, as openssl reads it."""
    printed = subprocess.run(["openssl", "x509", "-in", str(certificate), "-noout", "-enddate"],
                             check=True, capture_output=True, text=True).stdout.strip()
    moment = datetime.datetime.strptime(printed.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp()


def test_the_certificate_expiry_metric_is_each_certificates_not_after(stack):
    """The gateway serves and presents its own certificate (server and client role); a backend that
    calls no one shows only its server certificate."""
    gateway = sample_values(stack.admin_ports["gateway"], "portal_tls_certificate_expiry_timestamp_seconds")
    expected = not_after(stack.certs / "gateway.crt")
    assert gateway == {frozenset({("role", "server")}): expected, frozenset({("role", "client")}): expected}
    audit = sample_values(stack.admin_ports["audit"], "portal_tls_certificate_expiry_timestamp_seconds")
    assert audit == {frozenset({("role", "server")}): not_after(stack.certs / "audit.crt")}
