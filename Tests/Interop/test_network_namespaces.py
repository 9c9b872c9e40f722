"""The four services across real network hops: each in its own network namespace with its own address
(the way pods get theirs), joined by veth pairs on a bridge, with mutual TLS between them.

The suite runs the portal flow through the gateway, kills and restarts a backend and sees the gateway
reconnect, then degrades the entitlements service's link: dropped packets (nftables, all or a share
of them) and a starved link (a token-bucket filter at a few kilobits per second). Every call must end
by its deadline with a clear status, never hang, and the flow works again once the link heals.

Needs root for namespaces (`ip netns`), veth and bridges; it is skipped, saying why, where the machine
forbids them. The kernel here has no `netem`; loss comes from nftables' random drop and latency from
`tbf` rate limiting, which queue and lose packets on the link just as well.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import support
from test_tls import dev_certs

pytestmark = pytest.mark.skipif(support.backend() == "postgres", reason="the namespaced hosts cannot reach the loopback-only PostgreSQL server; this suite is about the network, and runs on SQLite")

P = support.protos()
G, I, E = P.gateway, P.identity, P.entitlements
PASSWORD = "correct horse battery staple"
SERVICES = {"gateway": 10, "entitlements": 11, "identity": 12, "audit": 13}
PORTS = {"gateway": 50050, "entitlements": 50051, "identity": 50052, "audit": 50053}
STATUS_SLACK = 1.5  # seconds a call may take past its deadline before it counts as hanging


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), check=check, capture_output=True, text=True)


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Fabric:
    """A bridge in this namespace and one namespace per service, each with a veth on the bridge."""

    def __init__(self):
        self.tag = secrets.token_hex(2)
        self.subnet = f"10.231.{int(self.tag, 16) % 250 + 1}"
        self.bridge = f"pbr{self.tag}"
        self.namespaces: dict[str, str] = {}

    def address(self, service: str) -> str:
        return f"{self.subnet}.{SERVICES[service]}"

    def namespace(self, service: str) -> str:
        return self.namespaces[service]

    def create(self) -> "Fabric":
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for service in SERVICES:
            namespace = f"portal-{service[:5]}-{self.tag}"
            outside = f"v{service[:3]}{self.tag}"
            run("ip", "netns", "add", namespace)
            self.namespaces[service] = namespace
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            run("ip", "link", "set", outside, "master", self.bridge)
            run("ip", "link", "set", outside, "up")
            inside = ["ip", "-n", namespace]
            run(*inside, "addr", "add", f"{self.address(service)}/24", "dev", "eth0")
            run(*inside, "link", "set", "eth0", "up")
            run(*inside, "link", "set", "lo", "up")
            run(*inside, "route", "add", "default", "via", f"{self.subnet}.1")
        return self

    def destroy(self) -> None:
        for namespace in self.namespaces.values():
            run("ip", "netns", "del", namespace, check=False)
        run("ip", "link", "del", self.bridge, check=False)

    # -- link trouble on a service's side of its link

    def drop(self, service: str, percent: int) -> None:
        """Drops `percent`% of the packets arriving at `service`, chosen at random."""
        namespace = self.namespace(service)
        run("ip", "netns", "exec", namespace, "nft", "add", "table", "inet", "chaos")
        run("ip", "netns", "exec", namespace, "nft", "add", "chain", "inet", "chaos", "input",
            "{ type filter hook input priority 0; }")
        rule = "drop" if percent >= 100 else f"numgen random mod 100 < {percent} drop"
        run("ip", "netns", "exec", namespace, "nft", "add", "rule", "inet", "chaos", "input", *rule.split())

    def starve(self, service: str, rate: str) -> None:
        """Limits what `service` sends to `rate` (a token bucket with a long queue: packets wait)."""
        run("ip", "netns", "exec", self.namespace(service), "tc", "qdisc", "add", "dev", "eth0", "root", "tbf",
            "rate", rate, "burst", "1600", "latency", "30s")

    def heal(self, service: str) -> None:
        run("ip", "netns", "exec", self.namespace(service), "nft", "delete", "table", "inet", "chaos", check=False)
        run("ip", "netns", "exec", self.namespace(service), "tc", "qdisc", "del", "dev", "eth0", "root", check=False)


class NamespacedService:
    """`portal <service>` inside its namespace, listening on its own address."""

    def __init__(self, fabric: Fabric, portal_bin: str, root: Path, certs: Path, service: str):
        self.fabric, self.portal_bin, self.root, self.certs, self.service = fabric, portal_bin, root, certs, service
        self.proc: subprocess.Popen | None = None
        self.log = root / f"{service}.stderr.log"

    @property
    def address(self) -> str:
        return f"{self.fabric.address(self.service)}:{PORTS[self.service]}"

    def argv(self) -> list[str]:
        certs = self.certs
        argv = [self.portal_bin, self.service, "--host", self.fabric.address(self.service), "--port", str(PORTS[self.service]),
                "--data-dir", str(self.root / f"{self.service}-data"),
                "--tls-cert", str(certs / f"{self.service}.crt"), "--tls-key", str(certs / f"{self.service}.key"),
                "--tls-ca", str(certs / "ca.crt"), "--audit-address", f"{self.fabric.address('audit')}:{PORTS['audit']}"]
        if self.service != "gateway":
            argv += ["--tls-client-ca", str(certs / "ca.crt")]
        else:
            argv += ["--identity-address", f"{self.fabric.address('identity')}:{PORTS['identity']}",
                     "--entitlements-address", f"{self.fabric.address('entitlements')}:{PORTS['entitlements']}"]
        return argv

    def start(self) -> "NamespacedService":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.fabric.namespace(self.service), *self.argv()],
                                         stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
        channel = grpc.insecure_channel(self.address)  # health answers cleartext probes on the TLS port
        try:
            def serving():
                if self.proc.poll() is not None:
                    pytest.fail(f"{self.service} exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}", pytrace=False)
                try:
                    return support.health_check(channel, timeout=1).status == P.health.HealthCheckResponse.SERVING
                except grpc.RpcError:
                    return False
            assert support.wait_until(serving, timeout=support.STARTUP_TIMEOUT, interval=0.1), self.log.read_text()[-4000:]
        finally:
            channel.close()
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=support.SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


def namespaces_forbidden() -> str | None:
    """Why this machine cannot run the suite, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not shutil.which("ip"):
        return "iproute2 (ip) is not installed"
    probe = f"portal-probe-{secrets.token_hex(3)}"
    result = run("ip", "netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"this machine forbids network namespaces: {result.stderr.strip()}"
    run("ip", "netns", "del", probe, check=False)
    return None


@pytest.fixture(scope="module")
def hosts(portal_bin, tmp_path_factory):
    reason = namespaces_forbidden()
    if reason:
        pytest.skip(f"network-namespace suite skipped: {reason}")
    assert shutil.which("nft") and shutil.which("tc"), "nft and tc are needed (scripts/install-deps test installs them)"
    fabric = Fabric().create()
    root = tmp_path_factory.mktemp("netns")
    certs = dev_certs(root / "certs", *[arg for service in SERVICES for arg in ("--ip", fabric.address(service))])
    services = {name: NamespacedService(fabric, portal_bin, root, certs, name) for name in ("audit", "identity", "entitlements", "gateway")}
    try:
        for service in services.values():
            service.start()
        yield fabric, services, certs
    finally:
        codes = {name: service.stop() for name, service in reversed(services.items())}
        fabric.destroy()
    assert all(code == 0 for code in codes.values()), codes


class Portal:
    """A tenant set up through the backends, then driven through the gateway, all over mutual TLS."""

    def __init__(self, fabric: Fabric, services: dict[str, NamespacedService], certs: Path):
        def secure(service: str, client: str | None) -> grpc.Channel:
            root = (certs / "ca.crt").read_bytes()
            credentials = grpc.ssl_channel_credentials(root_certificates=root) if client is None else grpc.ssl_channel_credentials(
                root_certificates=root, private_key=(certs / f"{client}.key").read_bytes(),
                certificate_chain=(certs / f"{client}.crt").read_bytes())
            return grpc.secure_channel(services[service].address, credentials)

        self.services = services
        self.identity = P.identity_grpc.IdentityServiceStub(secure("identity", "gateway"))
        self.entitlements = P.entitlements_grpc.EntitlementsServiceStub(secure("entitlements", "gateway"))
        self.gateway = P.gateway_grpc.PortalServiceStub(secure("gateway", None))

    def sign_up(self) -> None:
        identity_data = self.services["identity"].root / "identity-data"
        domain = f"{unique('org')}.example.com"
        self.email = f"ada@{domain}"
        before = support.spool_files(identity_data)
        organization = self.identity.CreateOrganization(I.CreateOrganizationRequest(
            name=f"Hops Co {unique()}", first_admin_email=self.email, idempotency_key=unique("key-")), timeout=10).organization
        self.organization_id = organization.organization_id
        secret = support.wait_for_invite_secret(identity_data, self.email, before)
        self.identity.AcceptInvite(I.AcceptInviteRequest(invite_secret=secret, first_name="Ada", last_name="Lovelace", password=PASSWORD),
                                   timeout=10)
        self.product_id = unique("SKU-")
        self.entitlements.UpsertProduct(E.UpsertProductRequest(product=E.Product(
            product_id=self.product_id, name="Hop Engine", license_type="Subscription", product_description="engine",
            deployment_type="Cloud")), timeout=10)
        self.entitlement_id = unique("ENT-")
        self.entitlements.TransferEntitlement(E.TransferEntitlementRequest(
            entitlement_id=self.entitlement_id, organization_id=self.organization_id, sales_order=unique("SO-"),
            order_date=Timestamp(seconds=1_767_225_600), lines=[E.TransferLine(product_id=self.product_id, quantity=1000)]), timeout=10)
        token = self.gateway.Login(G.LoginRequest(organization_id=self.organization_id, email=self.email, password=PASSWORD),
                                   timeout=10).session_token
        self.auth = [("authorization", f"Bearer {token}")]

    def activate(self, timeout: float) -> object:
        return self.gateway.Activate(G.ActivateRequest(
            entitlement_id=self.entitlement_id, product_id=self.product_id, quantity=1, project_name=unique("project-"),
            project_manager="Grace", idempotency_key=unique("key-")), metadata=self.auth, timeout=timeout)

    def list_activations(self, timeout: float) -> object:
        return self.gateway.ListActivations(G.ListActivationsRequest(page_size=200), metadata=self.auth, timeout=timeout)

    def dashboard(self, timeout: float) -> object:
        return self.gateway.GetDashboard(G.GetDashboardRequest(), metadata=self.auth, timeout=timeout)

    def whoami(self, timeout: float) -> object:
        return self.gateway.WhoAmI(G.WhoAmIRequest(), metadata=self.auth, timeout=timeout)


def timed(call, deadline: float) -> tuple[grpc.StatusCode, str, float]:
    """Runs `call(deadline)`; returns its status, details and how long it took."""
    started = time.monotonic()
    try:
        call(deadline)
        code, details = grpc.StatusCode.OK, ""
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    return code, details, time.monotonic() - started


@pytest.fixture(scope="module")
def portal(hosts) -> Portal:
    fabric, services, certs = hosts
    portal = Portal(fabric, services, certs)
    portal.sign_up()
    for _ in range(30):  # enough activations that a page of them outweighs a starved link's burst
        portal.activate(10)
    return portal


def test_the_flow_crosses_namespaces_over_mutual_tls(hosts, portal):
    fabric, _, _ = hosts
    assert portal.whoami(10).principal.email == portal.email
    activated = portal.activate(10).activation
    assert activated.quantity == 1
    assert portal.dashboard(10).activated_licenses >= 1
    # The backends saw the gateway arrive from its own address, not loopback.
    log = portal.services["entitlements"].root / "entitlements.stderr.log"
    peer = f'"peer":"[IPv4]{fabric.address("gateway")}/{fabric.address("gateway")}:'
    assert support.wait_until(lambda: peer in log.read_text(), timeout=5), log.read_text()[-2000:]


def test_the_gateway_reconnects_to_a_restarted_backend(hosts, portal):
    entitlements = portal.services["entitlements"]
    entitlements.kill()
    code, details, _ = timed(portal.activate, 5)
    assert code == grpc.StatusCode.UNAVAILABLE and details.startswith("licensing is unavailable right now"), (code, details)
    assert portal.whoami(5).principal.email == portal.email  # identity is untouched

    entitlements.start()
    restarted = time.monotonic()
    recovered = support.wait_until(lambda: timed(portal.activate, 5)[0] == grpc.StatusCode.OK, timeout=20, interval=0.25)
    assert recovered, f"the gateway did not reach the restarted entitlements service within 20 s: {timed(portal.activate, 5)}"
    print(f"gateway reconnected {time.monotonic() - restarted:.1f} s after the backend served again")


@pytest.mark.parametrize("trouble", ["every packet dropped", "a starved link"])
def test_a_broken_link_ends_calls_by_their_deadline_with_a_clear_status(hosts, portal, trouble):
    fabric, _, _ = hosts
    assert timed(portal.dashboard, 5)[0] == grpc.StatusCode.OK
    if trouble == "every packet dropped":
        fabric.drop("entitlements", 100)
    else:
        fabric.starve("entitlements", "1kbit")
    try:
        # A page of activations is larger than the link's burst; later calls queue behind it.
        for call, deadline in ((portal.list_activations, 2.0), (portal.activate, 2.0)):
            code, details, took = timed(call, deadline)
            assert code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), (code, details)
            assert took < deadline + STATUS_SLACK, f"{call.__name__} took {took:.1f} s with a {deadline} s deadline"
            assert details, "the status names what happened"
        # The dashboard answers what the other backends give, marking licensing unavailable, or
        # ends by its deadline while the link still looks alive.
        started = time.monotonic()
        try:
            board = portal.dashboard(3.0)
            assert G.DASHBOARD_SECTION_LICENSES in board.unavailable_sections, board
        except grpc.RpcError as error:
            assert error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), error
        assert time.monotonic() - started < 3.0 + STATUS_SLACK
        code, _, took = timed(portal.whoami, 3)  # calls that need only identity are unaffected
        assert code == grpc.StatusCode.OK and took < 1.5
    finally:
        fabric.heal("entitlements")
    healed = support.wait_until(lambda: timed(portal.activate, 5)[0] == grpc.StatusCode.OK, timeout=30, interval=0.5)
    assert healed, f"activations did not work again within 30 s of healing the link: {timed(portal.activate, 5)}"


def test_a_lossy_link_loses_no_call_and_every_one_ends_in_time(hosts, portal):
    """With 20% of packets dropped TCP retransmits: calls slow down, and each one ends by its deadline,
    answered or with a clear status; the link still carries calls, and works fully once healed."""
    fabric, _, _ = hosts
    fabric.drop("entitlements", 20)
    outcomes = []
    try:
        for _ in range(12):
            code, details, took = timed(portal.activate, 6.0)
            outcomes.append((code, round(took, 2)))
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE), (code, details)
            assert took < 6.0 + STATUS_SLACK, outcomes
    finally:
        fabric.heal("entitlements")
    assert any(code == grpc.StatusCode.OK for code, _ in outcomes), f"no call got through the lossy link: {outcomes}"
    print("20% loss:", outcomes)
    healed = support.wait_until(lambda: timed(portal.activate, 5)[0] == grpc.StatusCode.OK, timeout=30, interval=0.5)
    assert healed, f"activations did not work again within 30 s of healing the link: {timed(portal.activate, 5)}"
