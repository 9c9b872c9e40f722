"""The container image, built from deploy/Dockerfile by scripts/build-image and run with podman (runc):
its size and configuration, a non-root user on a read-only root filesystem, and the four services
started from it answering health checks and a real activation called from outside, through the
gateway to identity, entitlements and audit. A stopped container drains and exits 0.

Run by scripts/test-image, which sets PORTAL_IMAGE (the image) and PORTAL_IMAGE_WORK (its storage).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Interop"))
import support  # noqa: E402

T = 10
P = support.protos()
G, I, E = P.gateway, P.identity, P.entitlements
PASSWORD = "correct horse battery staple"
IMAGE = os.environ.get("PORTAL_IMAGE", "")
WORK = Path(os.environ.get("PORTAL_IMAGE_WORK", ""))
# The runtime image's size budget: Debian bookworm slimmed (about 80 MB with the runtime libraries) and
# the static binary without debug sections (about 120 MB, of which 40 are ICU's tables in Foundation).
SIZE_BUDGET_MB = 220
SERVICES = ("audit", "identity", "entitlements", "gateway")


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """podman on the image's own storage, as scripts/image-env calls it."""
    assert IMAGE and WORK.is_dir(), "run through scripts/test-image (PORTAL_IMAGE, PORTAL_IMAGE_WORK)"
    command = ["podman", "--root", str(WORK / "storage"), "--runroot", str(WORK / "run"), "--storage-driver", "vfs",
               "--runtime", "runc", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
    return done


# How a platform would run it: read-only root, a writable /tmp, no privileges, file limits it may set.
RUN_FLAGS = ["--read-only", "--tmpfs", "/tmp", "--network", "host", "--security-opt", "no-new-privileges",
             "--cap-drop", "ALL", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def image_config() -> dict:
    return json.loads(podman("image", "inspect", IMAGE).stdout)[0]


def test_the_image_is_small_and_carries_no_toolchain():
    size_mb = image_config()["Size"] / 1e6
    print(f"\nimage {IMAGE}: {size_mb:.1f} MB")
    assert size_mb < SIZE_BUDGET_MB
    found = podman("run", "--rm", *RUN_FLAGS, "--entrypoint", "/bin/sh", IMAGE, "-c",
                   "for tool in swift swiftc gcc cc clang; do command -v $tool; done; true").stdout
    assert found.strip() == "", f"build tools in the runtime image: {found}"


def test_the_image_runs_portal_as_user_10001_with_data_as_a_volume():
    config = image_config()["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["/usr/local/bin/portal"] and config["Cmd"] == ["gateway"]
    assert set(config["Volumes"]) == {"/data"}
    assert {"50050/tcp", "50051/tcp", "50052/tcp", "50053/tcp", "8443/tcp", "9090/tcp"} <= set(config["ExposedPorts"])
    assert {"PORTAL_DATA_DIR=/data", "PORTAL_ADMIN_PORT=9090"} <= set(config["Env"])


def test_the_service_user_can_write_only_its_volume_and_tmp():
    volume = unique("portal-data-")
    try:
        script = ("id -u; id -g; "
                  "touch /usr/local/bin/portal 2>/dev/null && echo binary-writable; "
                  "touch /etc/x 2>/dev/null && echo root-writable; "
                  "touch /data/x && echo data-writable; touch /tmp/x && echo tmp-writable")
        lines = podman("run", "--rm", *RUN_FLAGS, "-v", f"{volume}:/data", "--entrypoint", "/bin/sh", IMAGE, "-c",
                       script).stdout.split()
        assert lines == ["10001", "10001", "data-writable", "tmp-writable"]
    finally:
        podman("volume", "rm", "-f", volume, check=False)


class ContainerStack:
    """The four services, each in its own container from the image with its own volume."""

    def __init__(self):
        self.tag = unique()
        self.containers: dict[str, str] = {}
        self.volumes: dict[str, str] = {}
        self.ports = {service: support.free_port() for service in SERVICES}
        self.admin_ports = {service: support.free_port() for service in SERVICES}
        self.channels: list[grpc.Channel] = []

    def start(self) -> "ContainerStack":
        addresses = {service: f"127.0.0.1:{port}" for service, port in self.ports.items()}
        for service in SERVICES:
            volume = self.volumes[service] = f"portal-{service}-{self.tag}"
            podman("volume", "create", volume)
            self.containers[service] = podman(
                "run", "-d", "--name", f"portal-{service}-{self.tag}", *RUN_FLAGS, "-v", f"{volume}:/data",
                "-e", "PORTAL_HOST=127.0.0.1", "-e", f"PORTAL_PORT={self.ports[service]}",
                "-e", f"PORTAL_ADMIN_PORT={self.admin_ports[service]}",
                "-e", f"PORTAL_AUDIT_ADDRESS={addresses['audit']}",
                "-e", f"PORTAL_IDENTITY_ADDRESS={addresses['identity']}",
                "-e", f"PORTAL_ENTITLEMENTS_ADDRESS={addresses['entitlements']}",
                IMAGE, service).stdout.strip()
        for service in SERVICES:
            support.wait_until(lambda: self.ready(service), timeout=30, interval=0.1)
        self.identity = P.identity_grpc.IdentityServiceStub(self.channel("identity"))
        self.entitlements = P.entitlements_grpc.EntitlementsServiceStub(self.channel("entitlements"))
        self.portal = P.gateway_grpc.PortalServiceStub(self.channel("gateway"))
        return self

    def ready(self, service: str) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_ports[service]}/readyz", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def channel(self, service: str) -> grpc.Channel:
        channel = support.make_channel(self.ports[service])
        self.channels.append(channel)
        return channel

    def data_dir(self, service: str) -> Path:
        return Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", self.volumes[service]).stdout.strip())

    def logs(self) -> str:
        return "\n".join(f"--- {service}\n" + podman("logs", container, check=False).stderr[-3000:]
                         for service, container in self.containers.items())

    def remove(self) -> None:
        for channel in self.channels:
            channel.close()
        for container in self.containers.values():
            podman("rm", "-f", container, check=False)
        for volume in self.volumes.values():
            podman("volume", "rm", "-f", volume, check=False)


@pytest.fixture(scope="module")
def stack():
    started = ContainerStack()
    try:
        yield started.start()
    except Exception:
        print(started.logs())
        raise
    finally:
        started.remove()


def test_every_service_answers_health_from_outside_its_container(stack):
    for service in SERVICES:
        response = support.health_check(stack.channel(service))
        assert response.status == P.health.HealthCheckResponse.SERVING, service


def test_an_activation_crosses_every_container(stack):
    """Sign-up on identity (the invite mail lands in its volume), a transfer on entitlements, then
    login and activation through the gateway, and the activation's audit event read back."""
    domain = f"{unique('org')}.example.com"
    email = f"ada@{domain}"
    identity_data = stack.data_dir("identity")
    before = support.spool_files(identity_data)
    organization = stack.identity.CreateOrganization(I.CreateOrganizationRequest(
        name=f"Contained Co {unique()}", first_admin_email=email, idempotency_key=unique("key-")), timeout=T).organization
    secret = support.wait_for_invite_secret(identity_data, email, before)
    stack.identity.AcceptInvite(
        I.AcceptInviteRequest(invite_secret=secret, first_name="Ada", last_name="Lovelace", password=PASSWORD), timeout=T)
    product_id, entitlement_id = unique("SKU-"), unique("ENT-")
    stack.entitlements.UpsertProduct(E.UpsertProductRequest(product=E.Product(
        product_id=product_id, name="Boxed Engine", license_type="Subscription", product_description="engine",
        deployment_type="Cloud")), timeout=T)
    stack.entitlements.TransferEntitlement(E.TransferEntitlementRequest(
        entitlement_id=entitlement_id, organization_id=organization.organization_id, sales_order=unique("SO-"),
        order_date=Timestamp(seconds=1_767_225_600),
        lines=[E.TransferLine(product_id=product_id, quantity=4)]), timeout=T)

    token = stack.portal.Login(G.LoginRequest(
        organization_id=organization.organization_id, email=email, password=PASSWORD), timeout=T).session_token
    auth = [("authorization", f"Bearer {token}")]
    project = unique("project-")
    activation = stack.portal.Activate(G.ActivateRequest(
        entitlement_id=entitlement_id, product_id=product_id, quantity=3, project_name=project, project_manager="Grace",
        idempotency_key=unique("key-")), metadata=auth, timeout=T).activation
    assert activation.quantity == 3
    events = support.wait_until(lambda: list(stack.portal.ListAuditEvents(
        G.ListAuditEventsRequest(search_text=project), metadata=auth, timeout=T).events), timeout=30, interval=0.2)
    assert [event.message for event in events] == [f"Activated 3 licenses of Boxed Engine for project {project}"]
    # Each backend keeps its database in its own volume.
    for service in ("identity", "entitlements", "audit"):
        assert (stack.data_dir(service) / f"{service}.sqlite").is_file(), service


def test_the_services_run_as_user_10001(stack):
    for service, container in stack.containers.items():
        status = podman("exec", container, "cat", "/proc/1/status").stdout
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uids) == {"10001"}, service


def test_a_stopped_container_drains_and_exits_zero(stack):
    gateway = stack.containers["gateway"]
    podman("stop", "-t", "20", gateway)
    state = json.loads(podman("inspect", gateway).stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0), state
