"""`portal dev`: the four services in one process on their default ports, the demo organization it
seeds on a fresh data directory, and `portal dev --tls` with certificates from `scripts/dev-certs`;
driven with `portalctl` as a developer would.
"""

from __future__ import annotations

import http.client
import json
import os
import pty
import re
import signal
import subprocess
from pathlib import Path

import grpc
import pytest

import support
from test_tls import dev_certs

pytestmark = pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")

DEMO_PASSWORD = "portal-demo-2026"
GATEWAY = 50050


class Dev:
    """A `portal dev` process with its output in files."""

    def __init__(self, portal_bin: str, workdir: Path, *args: str):
        self.out = workdir / "dev.stdout.log"
        self.err = workdir / "dev.stderr.log"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([portal_bin, "dev", "--data-dir", str(workdir / "data"), *args],
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def organization(self, timeout: float = 60) -> str:
        """Waits for the sign-in instructions and returns the demo organization's id."""
        def printed():
            if self.proc.poll() is not None:
                pytest.fail(f"portal dev exited with {self.proc.returncode}:\n{self.err.read_text()[-4000:]}", pytrace=False)
            found = re.search(r"Demo organization (org_[0-9a-f]+)", self.out.read_text())
            return found.group(1) if found else None
        organization = support.wait_until(printed, timeout=timeout, interval=0.2)
        assert organization, f"no sign-in instructions within {timeout} s:\n{self.err.read_text()[-4000:]}"
        return organization

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=support.SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                pytest.fail("portal dev did not stop within 10 s of SIGTERM", pytrace=False)
            assert code == 0, self.err.read_text()[-4000:]


@pytest.fixture
def run_dev(portal_bin, tmp_path):
    started: list[Dev] = []

    def run(*args: str) -> Dev:
        dev = Dev(portal_bin, tmp_path, *args)
        started.append(dev)
        return dev

    yield run
    for dev in started:
        dev.stop()


def portalctl(portal_bin: str, tmp_path: Path, *args: str, tls_ca: Path | None = None) -> subprocess.CompletedProcess:
    tls = ["--tls-ca", str(tls_ca)] if tls_ca else []
    gateway = f"localhost:{GATEWAY}" if tls_ca else f"127.0.0.1:{GATEWAY}"
    return subprocess.run([str(Path(portal_bin).parent / "portalctl"), *args, "--gateway", gateway, "--session", str(tmp_path / "session"),
                           *tls], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_the_demo_organization_is_seeded_once_and_signs_in(portal_bin, tmp_path, run_dev):
    dev = run_dev()
    organization = dev.organization()
    login = portalctl(portal_bin, tmp_path, "login", "--org", organization, "--email", "ada@northwind.example",
                      "--password", DEMO_PASSWORD)
    assert login.returncode == 0, login.stderr
    dashboard = portalctl(portal_bin, tmp_path, "dashboard", "--json")
    assert dashboard.returncode == 0, dashboard.stderr
    figures = json.loads(dashboard.stdout)
    assert figures["total_members"] == 4 and figures["activated_licenses"] > 0, figures
    entitlements = json.loads(portalctl(portal_bin, tmp_path, "entitlements", "--json").stdout)
    assert len(entitlements["entitlements"]) == 5, entitlements
    dev.stop()

    again = run_dev()
    assert again.organization() == organization, "a seeded data directory is not seeded again"


def accept_links(data_dir: Path, email: str) -> list[tuple[str, str]]:
    """The accept link and invite code of every spooled invite mail to `email`."""
    links = []
    for mail in support.invite_mails(data_dir, email):
        link = next(line.split(":", 1)[1].strip() for line in mail.body.splitlines() if line.startswith("Accept the invite:"))
        links.append((link, mail.secret))
    return links


def test_invite_mail_opens_the_web_portal_and_the_instructions_end_with_its_sign_ins(portal_bin, tmp_path, run_dev):
    """Invite mail from `portal dev` links to the web portal it serves (moved with --port-base), whose
    page answers the link; the printed instructions end with that address and the browser sign-ins."""
    base = support.free_port_base()
    dev = run_dev("--port-base", str(base))
    dev.organization()
    portal = f"http://127.0.0.1:{base + 4}/"
    links = accept_links(tmp_path / "data", "dorothy@northwind.example")
    assert links, "no invite mail to the pending invitee in the spool"
    for link, code in links:
        assert link == f"{portal}accept-invite?code={code}", link
    connection = http.client.HTTPConnection("127.0.0.1", base + 4, timeout=10)
    try:
        connection.request("GET", links[0][0].removeprefix(portal[:-1]), headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
        page = connection.getresponse()
        assert page.status == 200 and page.getheader("content-type") == "text/html; charset=utf-8"
    finally:
        connection.close()

    printed = dev.out.read_text()
    assert re.search(r"portalctl --gateway 127\.0\.0\.1:\d+ login --email grace@northwind\.example", printed), printed
    browser = printed[printed.rindex("portalctl"):]
    assert f"The portal: {portal}" in browser and DEMO_PASSWORD in browser, printed
    for email, role in [("grace@northwind.example", "Viewer"), ("ada@northwind.example", "Admin"), ("lin@tailspin.example", "Admin")]:
        line = next((line for line in browser.splitlines() if email in line), "")
        assert role in line, f"{email} is not listed as {role} after the portalctl lines:\n{printed}"
    assert "lin@tailspin.example" in printed.rstrip().splitlines()[-1], "the output ends with the browser sign-ins"


def test_portal_dev_refuses_an_invite_url_without_the_secret(portal_bin, tmp_path):
    result = subprocess.run([portal_bin, "dev", "--invite-url", "https://portal.example.com/accept-invite", "--data-dir",
                             str(tmp_path / "data")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 64 and "--invite-url:" in result.stderr and "{secret}" in result.stderr, result.stderr


def test_portal_dev_tls_serves_every_service_with_mutual_tls(portal_bin, tmp_path, run_dev):
    certs = dev_certs(tmp_path / "certs")
    organization = run_dev("--tls", str(certs)).organization()
    # Over TLS the invite mail links to the portal by the name its certificate carries.
    links = accept_links(tmp_path / "data", "mary@northwind.example")
    assert links and all(link == f"https://localhost:8080/accept-invite?code={code}" for link, code in links), links
    login = portalctl(portal_bin, tmp_path, "login", "--org", organization, "--email", "grace@northwind.example",
                      "--password", DEMO_PASSWORD, tls_ca=certs / "ca.crt")
    assert login.returncode == 0, login.stderr
    whoami = portalctl(portal_bin, tmp_path, "whoami", "--json", tls_ca=certs / "ca.crt")
    assert whoami.returncode == 0 and "grace@northwind.example" in whoami.stdout, whoami.stderr
    # Backends require the CA's client certificates; the gateway takes any TLS caller.
    root = (certs / "ca.crt").read_bytes()
    entitlements = grpc.secure_channel("localhost:50051", grpc.ssl_channel_credentials(root_certificates=root))
    try:
        with pytest.raises(grpc.RpcError) as refused:
            support.list_services(entitlements)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        entitlements.close()


def run_portalctl(portal_bin: str, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """The real portalctl with exactly `args` (no --gateway, --tls-ca or --session added); standard
    input is not a terminal unless `stdin` is one."""
    return subprocess.run([str(Path(portal_bin).parent / "portalctl"), *args], stdin=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_portalctl_signs_in_without_an_organization_and_remembers_the_tls_gateway(portal_bin, tmp_path, run_dev):
    """Against `portal dev --tls`: `portalctl --gateway … --tls-ca … login --email …` (options before
    the command, no --org) signs in; later commands need neither --gateway nor --tls-ca; Ada, a member
    of both demo organizations, is asked to choose (with --org without a terminal, from a list on
    one), sees both in `whoami`, and switches with `portalctl switch`."""
    certs = dev_certs(tmp_path / "certs")
    northwind = run_dev("--tls", str(certs)).organization()
    connect = ["--gateway", f"localhost:{GATEWAY}", "--tls-ca", str(certs / "ca.crt")]
    grace = ["--session", str(tmp_path / "grace-session")]

    login = run_portalctl(portal_bin, *connect, *grace, "login", "--email", "grace@northwind.example", "--password", DEMO_PASSWORD)
    assert login.returncode == 0, login.stderr
    assert "Signed in as Grace Hopper (Viewer)" in login.stdout
    dashboard = run_portalctl(portal_bin, *grace, "dashboard", "--json")
    assert dashboard.returncode == 0, dashboard.stderr
    assert json.loads(dashboard.stdout)["activated_licenses"] > 0 and "total_members" not in json.loads(dashboard.stdout)
    saved = json.loads((tmp_path / "grace-session").read_text())
    assert saved["gateway"] == f"localhost:{GATEWAY}" and saved["tls_ca"] == str((certs / "ca.crt").resolve())
    assert (tmp_path / "grace-session").stat().st_mode & 0o777 == 0o600

    # Ada is a member of two organizations: without a terminal she is told to choose with --org.
    ada = ["--session", str(tmp_path / "ada-session")]
    ask = run_portalctl(portal_bin, *connect, *ada, "login", "--email", "ada@northwind.example", "--password", DEMO_PASSWORD)
    assert ask.returncode == 64, ask.stderr
    offered = re.findall(r"--org (org_[0-9a-f]+)\s+(.+)", ask.stderr)
    assert [name for _, name in offered] == ["Northwind Robotics", "Tailspin Venues"], ask.stderr
    tailspin = offered[1][0]
    assert offered[0][0] == northwind and not (tmp_path / "ada-session").exists()

    chosen = run_portalctl(portal_bin, *connect, *ada, "login", "--email", "ada@northwind.example", "--password", DEMO_PASSWORD,
                           "--org", tailspin)
    assert chosen.returncode == 0, chosen.stderr
    me = json.loads(run_portalctl(portal_bin, *ada, "whoami", "--json").stdout)
    assert me["principal"]["organization_id"] == tailspin and me["principal"]["role"] == "VIEWER"
    assert [(o["name"], o["role"], o["current"]) for o in me["organizations"]] == [
        ("Northwind Robotics", "ADMIN", False), ("Tailspin Venues", "VIEWER", True)]

    switched = run_portalctl(portal_bin, *ada, "switch", northwind, "--password", DEMO_PASSWORD)
    assert switched.returncode == 0 and "Switched to Northwind Robotics as Admin." in switched.stdout, switched.stderr
    figures = json.loads(run_portalctl(portal_bin, *ada, "dashboard", "--json").stdout)
    assert figures["total_members"] == 4, figures
    assert run_portalctl(portal_bin, *ada, "switch", "org_not_mine", "--password", DEMO_PASSWORD).returncode == 5

    # On a terminal she picks from a list.
    primary, secondary = pty.openpty()
    try:
        os.write(primary, b"2\n")
        picked = run_portalctl(portal_bin, *connect, "--session", str(tmp_path / "tty-session"), "login",
                               "--email", "ada@northwind.example", "--password", DEMO_PASSWORD, stdin=secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    assert picked.returncode == 0, picked.stderr
    assert "1  Northwind Robotics" in picked.stderr and "2  Tailspin Venues" in picked.stderr and "Organization [1-2]:" in picked.stderr
    me = json.loads(run_portalctl(portal_bin, "--session", str(tmp_path / "tty-session"), "whoami", "--json").stdout)
    assert me["principal"]["organization_id"] == tailspin


def test_the_demo_is_refused_off_loopback(portal_bin, tmp_path):
    result = subprocess.run([portal_bin, "dev", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "data")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 64
    assert "serve it on loopback only, or pass --no-demo" in result.stderr
