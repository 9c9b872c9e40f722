"""TLS and mutual TLS between real `portal` processes, with certificates from `scripts/dev-certs`.

grpcio's secure channels and Python's `ssl` module do real handshakes against the servers: the four
services with mutual TLS end to end (gateway → backends, outbox relays → audit), callers without a
certificate, with another CA's or an expired one, principal metadata from a certificate that is not
the gateway's, cleartext health checks on a TLS port, server certificates the gateway must refuse,
ALPN and version negotiation, certificate rotation without restart, startup errors and the
connection metrics.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

import support

T = 10
P = support.protos()
G, I, E, A = P.gateway, P.identity, P.entitlements, P.audit
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
BACKENDS = ("entitlements", "identity", "audit")


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# -- certificates


def dev_certs(out: Path, *args: str) -> Path:
    """Runs scripts/dev-certs into `out` and returns it."""
    subprocess.run([str(ROOT / "scripts" / "dev-certs"), "--out", str(out), *args], check=True, capture_output=True, text=True)
    return out


def issue(certs: Path, name: str, *, dns: list[str], days: int = 30) -> tuple[Path, Path]:
    """A certificate from `certs`' CA naming only `dns`; a negative `days` makes it already expired."""
    key, csr, crt, ext = (certs / f"{name}.{suffix}" for suffix in ("key", "csr", "crt", "ext"))
    ext.write_text("subjectAltName=" + ",".join(f"DNS:{n}" for n in dns) + "\nextendedKeyUsage=serverAuth,clientAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-subj", f"/CN={name}", "-out", str(csr)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(certs / "ca.crt"), "-CAkey", str(certs / "ca.key"),
                    "-days", str(days), "-extfile", str(ext), "-out", str(crt)], check=True, capture_output=True)
    return crt, key


def credentials(certs: Path, client: str | None = None, ca: Path | None = None) -> grpc.ChannelCredentials:
    """grpcio credentials trusting `certs`' CA (or `ca`), presenting `client`'s certificate when given."""
    root = (ca or certs / "ca.crt").read_bytes()
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=(certs / f"{client}.key").read_bytes(),
        certificate_chain=(certs / f"{client}.crt").read_bytes())


def credentials_from(crt: Path, key: Path, ca: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes(), private_key=key.read_bytes(), certificate_chain=crt.read_bytes())


def tls_flags(certs: Path, service: str, *, client_ca: bool, calls: bool) -> list[str]:
    flags = ["--tls-cert", str(certs / f"{service}.crt"), "--tls-key", str(certs / f"{service}.key")]
    if client_ca:
        flags += ["--tls-client-ca", str(certs / "ca.crt")]
    if calls:
        flags += ["--tls-ca", str(certs / "ca.crt")]
    return flags


def handshake(port: int, *, ca: Path, alpn: list[str] | None = ("h2",), maximum: ssl.TLSVersion | None = None,
              server_name: str = "localhost") -> tuple[str, str | None, bytes]:
    """A TLS handshake with Python's ssl module; returns (version, ALPN protocol, server certificate DER)."""
    context = ssl.create_default_context(cafile=str(ca))
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if maximum:
        context.maximum_version = maximum
    with socket.create_connection(("127.0.0.1", port), timeout=T) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.version(), tls.selected_alpn_protocol(), tls.getpeercert(binary_form=True)


def refusal(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code(), raised.value.details() or ""


# -- the stack


class TLSStack:
    """Audit, identity and entitlements requiring client certificates, and a gateway serving TLS."""

    def __init__(self, portal_bin: str, root: Path, certs: Path):
        self.portal_bin, self.root, self.certs = portal_bin, root, certs
        self.processes: list[support.ServerProcess] = []
        self.channels: list[grpc.Channel] = []

    def launch(self, service: str, *args: str, name: str | None = None) -> support.ServerProcess:
        process = support.ServerProcess(
            [self.portal_bin, service, "--data-dir", str(self.root / f"{name or service}-data"), *args],
            f"{name or service}-{unique()}", self.root / "logs")
        self.processes.append(process)
        return process.start()

    def start(self) -> "TLSStack":
        certs = self.certs
        self.audit_admin = support.free_port()
        self.audit_server = self.launch("audit", *tls_flags(certs, "audit", client_ca=True, calls=False),
                                        "--admin-port", str(self.audit_admin))
        audit = f"127.0.0.1:{self.audit_server.port}"
        self.identity_server = self.launch("identity", *tls_flags(certs, "identity", client_ca=True, calls=True), "--audit-address", audit)
        self.entitlements_server = self.launch(
            "entitlements", *tls_flags(certs, "entitlements", client_ca=True, calls=True), "--audit-address", audit)
        self.gateway_server = self.start_gateway(*tls_flags(certs, "gateway", client_ca=False, calls=True))
        # Internal setup goes to the backends directly, as the gateway would: with its certificate.
        self.identity = P.identity_grpc.IdentityServiceStub(self.secure(self.identity_server.port, "gateway"))
        self.entitlements = P.entitlements_grpc.EntitlementsServiceStub(self.secure(self.entitlements_server.port, "gateway"))
        self.portal = P.gateway_grpc.PortalServiceStub(self.secure(self.gateway_server.port))
        return self

    def start_gateway(self, *tls: str, identity: str | None = None, name: str = "gateway") -> support.ServerProcess:
        """A gateway over this stack's backends: entitlements by DNS name, identity and audit by IP address."""
        return self.launch(
            "gateway", *tls,
            "--identity-address", identity or f"127.0.0.1:{self.identity_server.port}",
            "--entitlements-address", f"localhost:{self.entitlements_server.port}",
            "--audit-address", f"127.0.0.1:{self.audit_server.port}", name=name)

    def secure(self, port: int, client: str | None = None, credentials_: grpc.ChannelCredentials | None = None) -> grpc.Channel:
        channel = grpc.secure_channel(f"localhost:{port}", credentials_ or credentials(self.certs, client))
        self.channels.append(channel)
        return channel

    def stop(self) -> None:
        support.stop_all(self.processes, self.channels)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    return dev_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory) -> Path:
    """Certificates from another development CA."""
    return dev_certs(tmp_path_factory.mktemp("foreign-certs"))


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory, certs):
    started = TLSStack(portal_bin, tmp_path_factory.mktemp("tls-stack"), certs)
    try:
        yield started.start()
    finally:
        started.stop()


# -- end to end


def sign_up(stack) -> tuple[str, str]:
    """A new organization whose first Admin has accepted the invite; returns (organization id, email)."""
    domain = f"{unique('org')}.example.com"
    email = f"ada@{domain}"
    before = support.spool_files(stack.root / "identity-data")
    organization = stack.identity.CreateOrganization(I.CreateOrganizationRequest(
        name=f"Secure Co {unique()}", first_admin_email=email, idempotency_key=unique("key-")), timeout=T).organization
    secret = support.wait_for_invite_secret(stack.root / "identity-data", email, before)
    stack.identity.AcceptInvite(I.AcceptInviteRequest(invite_secret=secret, first_name="Ada", last_name="Lovelace", password=PASSWORD),
                                timeout=T)
    return organization.organization_id, email


def test_the_portal_flow_runs_end_to_end_over_mutual_tls(stack):
    """Sign-in, an activation and its audit event cross every hop: gateway → identity, entitlements and
    audit, and the outbox relays → audit, each over mutual TLS."""
    organization_id, email = sign_up(stack)
    product_id = unique("SKU-")
    stack.entitlements.UpsertProduct(E.UpsertProductRequest(product=E.Product(
        product_id=product_id, name="Secure Engine", license_type="Subscription", product_description="engine",
        deployment_type="Cloud")), timeout=T)
    entitlement_id = unique("ENT-")
    stack.entitlements.TransferEntitlement(E.TransferEntitlementRequest(
        entitlement_id=entitlement_id, organization_id=organization_id, sales_order=unique("SO-"),
        order_date=Timestamp(seconds=1_767_225_600), lines=[E.TransferLine(product_id=product_id, quantity=5)]), timeout=T)

    token = stack.portal.Login(G.LoginRequest(organization_id=organization_id, email=email, password=PASSWORD),
                               timeout=T).session_token
    auth = [("authorization", f"Bearer {token}")]
    assert stack.portal.WhoAmI(G.WhoAmIRequest(), metadata=auth, timeout=T).principal.email == email
    project = unique("project-")
    activation = stack.portal.Activate(G.ActivateRequest(
        entitlement_id=entitlement_id, product_id=product_id, quantity=2, project_name=project, project_manager="Grace",
        idempotency_key=unique("key-")), metadata=auth, timeout=T)
    assert activation.activation.quantity == 2
    dashboard = stack.portal.GetDashboard(G.GetDashboardRequest(), metadata=auth, timeout=T)
    assert (dashboard.available_licenses, dashboard.activated_licenses) == (5, 2)

    def audited():
        events = stack.portal.ListAuditEvents(G.ListAuditEventsRequest(search_text=project), metadata=auth, timeout=T).events
        return list(events)

    events = support.wait_until(audited, timeout=30, interval=0.2)
    assert [event.message for event in events] == [f"Activated 2 licenses of Secure Engine for project {project}"]
    assert events[0].user == "Ada Lovelace"


def test_portalctl_signs_in_over_tls(stack, portal_bin, tmp_path):
    organization_id, email = sign_up(stack)
    portalctl = str(Path(portal_bin).parent / "portalctl")
    common = ["--gateway", f"localhost:{stack.gateway_server.port}"]

    def ctl(*args: str, ca: Path | None = stack.certs / "ca.crt", session: Path = tmp_path / "session") -> subprocess.CompletedProcess:
        tls = ["--tls-ca", str(ca)] if ca else []
        return subprocess.run([portalctl, *args, *common, "--session", str(session), *tls], capture_output=True, text=True,
                              timeout=60, env={"PATH": "/usr/bin:/bin", "PORTAL_PASSWORD": PASSWORD})

    login = ctl("login", "--org", organization_id, "--email", email)
    assert login.returncode == 0, login.stderr
    whoami = ctl("whoami", "--json")
    assert whoami.returncode == 0 and email in whoami.stdout, whoami.stderr
    # The session remembers the CA; without one (a session never signed in over TLS) the call is cleartext.
    assert ctl("whoami", ca=None).returncode == 0
    cleartext = ctl("whoami", ca=None, session=tmp_path / "no-session")
    assert cleartext.returncode == 1, cleartext.stderr
    assert "the gateway accepts only TLS; connect with --tls-ca FILE" in cleartext.stderr, cleartext.stderr
    missing = ctl("whoami", ca=tmp_path / "absent.crt")
    assert missing.returncode == 1
    assert f"tls-ca {tmp_path / 'absent.crt'}: No such file or directory" in missing.stderr, missing.stderr


# -- what a backend asks of its callers


@pytest.mark.parametrize("service", BACKENDS)
def test_a_backend_refuses_a_caller_without_a_client_certificate(stack, service):
    channel = stack.secure(getattr(stack, f"{service}_server").port)
    assert support.health_check(channel).status == P.health.HealthCheckResponse.SERVING
    code, details = refusal(lambda: support.list_services(channel))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details == "a client certificate issued by the internal CA is required"


def test_a_backend_refuses_another_cas_certificate(stack, foreign):
    channel = stack.secure(stack.entitlements_server.port, credentials_=grpc.ssl_channel_credentials(
        root_certificates=(stack.certs / "ca.crt").read_bytes(), private_key=(foreign / "gateway.key").read_bytes(),
        certificate_chain=(foreign / "gateway.crt").read_bytes()))
    code, details = refusal(lambda: P.entitlements_grpc.EntitlementsServiceStub(channel).ListProducts(
        E.ListProductsRequest(organization_id="org_x"), timeout=T))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith("client certificate CN=gateway") and "was refused: unable to" in details, details


def test_a_backend_refuses_an_expired_certificate(stack, tmp_path):
    crt, key = issue(stack.certs, f"expired-{unique()}", dns=["gateway"], days=-1)
    channel = stack.secure(stack.audit_server.port, credentials_=credentials_from(crt, key, stack.certs / "ca.crt"))
    code, details = refusal(lambda: P.audit_grpc.AuditServiceStub(channel).RecentEvents(
        A.RecentEventsRequest(organization_id="org_x", limit=1), timeout=T))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.endswith("was refused: certificate has expired"), details


def test_principal_metadata_is_accepted_only_from_the_gateways_certificate(stack):
    acting = [("x-portal-member-id", "mem_someone"), ("x-portal-display-name", "Someone")]
    request = E.ListProductsRequest(organization_id="org_x")
    relay = P.entitlements_grpc.EntitlementsServiceStub(stack.secure(stack.entitlements_server.port, "identity"))
    assert relay.ListProducts(request, timeout=T).products == []  # another service's certificate may call
    code, details = refusal(lambda: relay.ListProducts(request, metadata=acting, timeout=T))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details == ("x-portal-member-id: principal metadata is accepted only from the gateway "
                       "(a client certificate naming gateway), not from CN=identity,O=End Customer Portal"), details
    assert stack.entitlements.ListProducts(request, metadata=acting, timeout=T).products == []


@pytest.mark.parametrize("service", BACKENDS + ("gateway",))
def test_cleartext_on_a_tls_port_answers_health_checks_only(stack, service):
    channel = support.make_channel(getattr(stack, f"{service}_server").port)
    try:
        assert support.health_check(channel).status == P.health.HealthCheckResponse.SERVING
        code, details = refusal(lambda: support.list_services(channel))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert details == "this server requires TLS; cleartext connections may call only grpc.health.v1.Health"
    finally:
        channel.close()


# -- what callers ask of servers


def test_grpcio_refuses_a_server_its_ca_did_not_issue(stack, foreign):
    channel = stack.secure(stack.gateway_server.port, credentials_=credentials(foreign))
    code, _ = refusal(lambda: support.health_check(channel, timeout=5))
    assert code == grpc.StatusCode.UNAVAILABLE


def test_the_gateway_refuses_a_backend_certificate_for_another_name(stack, tmp_path):
    """An identity server whose certificate names only `elsewhere`: the gateway's sign-in is UNAVAILABLE
    naming the mismatch, and no credentials were sent to it."""
    crt, key = issue(stack.certs, f"elsewhere-{unique()}", dns=["elsewhere"])
    impostor = stack.launch("identity", "--tls-cert", str(crt), "--tls-key", str(key), "--tls-client-ca", str(stack.certs / "ca.crt"),
                            name=f"impostor-{unique()}")
    gateway = stack.start_gateway(*tls_flags(stack.certs, "gateway", client_ca=False, calls=True),
                                  identity=f"127.0.0.1:{impostor.port}", name=f"gateway-{unique()}")
    portal = P.gateway_grpc.PortalServiceStub(stack.secure(gateway.port))
    code, details = refusal(lambda: portal.Login(G.LoginRequest(organization_id="org_x", email="a@b.example", password=PASSWORD),
                                                 timeout=T))
    assert code == grpc.StatusCode.UNAVAILABLE
    # The user reads what is unavailable; the gateway's log keeps why, under the request id.
    assert details.startswith("sign-in and member management is unavailable right now"), details
    # Logs are written by a thread of their own: give the line a moment to arrive.
    assert support.wait_until(lambda: "certificate was refused: IP address mismatch" in gateway.stderr_path.read_text(), timeout=5), \
        gateway.stderr_text()


def test_the_gateway_refuses_backends_when_it_trusts_another_ca(stack, foreign):
    gateway = stack.start_gateway("--tls-cert", str(stack.certs / "gateway.crt"), "--tls-key", str(stack.certs / "gateway.key"),
                                  "--tls-ca", str(foreign / "ca.crt"), name=f"gateway-{unique()}")
    portal = P.gateway_grpc.PortalServiceStub(stack.secure(gateway.port))
    code, details = refusal(lambda: portal.Login(G.LoginRequest(organization_id="org_x", email="a@b.example", password=PASSWORD),
                                                 timeout=T))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert details.startswith("sign-in and member management is unavailable right now"), details
    assert support.wait_until(lambda: "the server's certificate was refused: " in gateway.stderr_path.read_text(), timeout=5), \
        gateway.stderr_text()


# -- negotiation


def test_alpn_must_select_h2_and_tls_13_is_the_default(stack):
    version, protocol, _ = handshake(stack.gateway_server.port, ca=stack.certs / "ca.crt")
    assert (version, protocol) == ("TLSv1.3", "h2")
    with pytest.raises(ssl.SSLError, match="(?i)no application protocol"):
        handshake(stack.gateway_server.port, ca=stack.certs / "ca.crt", alpn=["http/1.1"])
    with pytest.raises(ssl.SSLError):
        handshake(stack.gateway_server.port, ca=stack.certs / "ca.crt", maximum=ssl.TLSVersion.TLSv1_2)


def test_tls_12_is_accepted_when_allowed(portal_bin, start_server, tmp_path, certs):
    server = start_server([portal_bin, "audit", "--data-dir", str(tmp_path / "audit-data"),
                           *tls_flags(certs, "audit", client_ca=False, calls=False), "--tls-min-version", "1.2"])
    version, protocol, _ = handshake(server.port, ca=certs / "ca.crt", maximum=ssl.TLSVersion.TLSv1_2)
    assert (version, protocol) == ("TLSv1.2", "h2")
    channel = grpc.secure_channel(f"localhost:{server.port}", credentials(certs))
    try:
        assert support.health_check(channel).status == P.health.HealthCheckResponse.SERVING
    finally:
        channel.close()


# -- rotation and startup


def test_a_rotated_certificate_is_served_without_restart(portal_bin, start_server, tmp_path, certs):
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(certs / "ca.crt", live / "ca.crt")
    shutil.copy(certs / "ca.key", live / "ca.key")
    dev_certs(live, "--service", "audit")
    server = start_server([portal_bin, "audit", "--data-dir", str(tmp_path / "audit-data"),
                           "--tls-cert", str(live / "audit.crt"), "--tls-key", str(live / "audit.key")])
    channel = grpc.secure_channel(f"localhost:{server.port}", credentials(certs))
    try:
        assert support.health_check(channel).status == P.health.HealthCheckResponse.SERVING
        _, _, first = handshake(server.port, ca=certs / "ca.crt")

        dev_certs(live, "--service", "audit")  # re-issued in place, each file replaced atomically
        rotated = support.wait_until(lambda: handshake(server.port, ca=certs / "ca.crt")[2] != first, timeout=5, interval=0.2)
        assert rotated, "new connections still get the old certificate 5 s after rotation"
        assert support.health_check(channel).status == P.health.HealthCheckResponse.SERVING  # the open connection lives on
        _, _, second = handshake(server.port, ca=certs / "ca.crt")

        shutil.copy(certs / "identity.key", live / "audit.key")  # a key that does not match: refused, old one kept
        # Files are looked at when connections arrive (at most once a second).
        assert support.wait_until(lambda: handshake(server.port, ca=certs / "ca.crt")[2] == second and "do not load" in server.stderr_text(),
                                  timeout=5, interval=0.2), server.stderr_text()
        assert support.health_check(channel).status == P.health.HealthCheckResponse.SERVING
    finally:
        channel.close()


@pytest.mark.parametrize("case", ["missing certificate", "key of another certificate", "key without certificate"])
def test_unusable_tls_files_stop_startup_with_a_clear_error(portal_bin, tmp_path, certs, case):
    flags = {
        "missing certificate": ["--tls-cert", str(tmp_path / "absent.crt"), "--tls-key", str(certs / "audit.key")],
        "key of another certificate": ["--tls-cert", str(certs / "audit.crt"), "--tls-key", str(certs / "gateway.key")],
        "key without certificate": ["--tls-key", str(certs / "audit.key")],
    }[case]
    expected = {
        "missing certificate": f"tls-cert {tmp_path / 'absent.crt'}: No such file or directory",
        "key of another certificate": f"tls-key {certs / 'gateway.key'} does not match the certificate in tls-cert {certs / 'audit.crt'}",
        "key without certificate": "--tls-cert and --tls-key go together; one of them is missing",
    }[case]
    result = subprocess.run([portal_bin, "audit", "--data-dir", str(tmp_path / "data"), "--port", str(support.free_port()), *flags],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr


def test_connection_metrics_count_tls_cleartext_and_failed_handshakes(stack):
    def value(body: str, name: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name))

    def metrics() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.audit_admin}/metrics", timeout=T) as response:
            return response.read().decode()

    before = metrics()
    with pytest.raises(ssl.SSLError):
        handshake(stack.audit_server.port, ca=stack.certs / "ca.crt", alpn=["http/1.1"])
    channel = support.make_channel(stack.audit_server.port)
    try:
        support.health_check(channel)
    finally:
        channel.close()
    support.health_check(stack.secure(stack.audit_server.port))
    failures = "portal_tls_handshake_failures_total"
    after = support.wait_until(lambda: next((body for body in [metrics()] if value(body, failures) > value(before, failures)), None), timeout=5)
    assert after, metrics()
    assert value(after, 'portal_connections_accepted_total{transport="tls"}') > value(before, 'portal_connections_accepted_total{transport="tls"}')
    assert value(after, 'portal_connections_accepted_total{transport="cleartext"}') > value(
        before, 'portal_connections_accepted_total{transport="cleartext"}')
    assert value(after, "portal_connections_open") >= 1
