"""The Prometheus configuration, alerting rules and Grafana dashboard in deploy/observability: promtool
validates the configuration and rules and runs the rules' unit tests on synthetic series
(alerts.test.yml); the dashboard is checked for the structure Grafana needs. That every metric they
query is really exported is checked against running services in Tests/Interop/test_observability.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing (Debian's prometheus package; scripts/install-deps test installs it)"
    return subprocess.run([tool, *args], cwd=OBSERVABILITY, capture_output=True, text=True)


def test_the_alerting_rules_are_valid():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alerting_rules_pass_their_unit_tests():
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test_that_fires_it():
    alerts = {rule["alert"] for group in yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]
              for rule in group["rules"] if "alert" in rule}
    fired = {case["alertname"] for test in yaml.safe_load((OBSERVABILITY / "alerts.test.yml").read_text())["tests"]
             for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert alerts == fired


def test_every_alert_says_how_serious_it_is_and_what_to_do():
    for group in yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
                assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_prometheus_configuration_is_valid_and_names_one_job_per_service():
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    configuration = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in configuration["scrape_configs"]}
    assert jobs == {"portal-gateway", "portal-entitlements", "portal-identity", "portal-audit"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((OBSERVABILITY / "dashboard.json").read_text())


def test_the_dashboard_has_unique_panels_laid_out_without_overlap(dashboard):
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    taken = set()
    for panel in panels:
        box = panel["gridPos"]
        assert 0 <= box["x"] and box["x"] + box["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(box["x"], box["x"] + box["w"]) for y in range(box["y"], box["y"] + box["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_dashboard_query_uses_the_data_source_and_service_variables(dashboard):
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'job=~"$job"' in target["expr"] and 'instance=~"$instance"' in target["expr"], panel["title"]
            assert target["refId"] and target["legendFormat"], panel["title"]


def test_the_dashboard_covers_what_the_platform_watches(dashboard):
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for subject in ("calls per second", "error", "latency p99", "in flight", "open connections",
                    "tls handshake failures", "certificate", "outbox backlog", "oldest undelivered", "wait for a connection",
                    "spans sent"):
        assert subject in titles, subject
