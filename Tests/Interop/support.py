"""Shared helpers for the interoperability and robustness tests.

- `protos()` generates the Python protobuf/grpc stubs into a temporary directory (never committed)
  and returns the modules.
- `ServerProcess` starts a server binary on a free loopback port, waits until it is healthy, and
  stops it with SIGTERM, checking that it exits cleanly.
- `RawH2Client` speaks HTTP/2 to a server with the `h2` package, for requests no well-behaved
  gRPC client would send.
- `wait_for_invite_secret()` reads an invite secret from the identity service's mail spool.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import importlib
import importlib.util
import os
import shutil
import signal
import socket
import urllib.request
import struct
import subprocess
import sys
import tempfile
import time
import types
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO_ROOT / "proto"

# Limits used by the tests.
MIB = 1024 * 1024
CLIENT_MAX_MESSAGE = 8 * MIB
SERVER_MAX_MESSAGE = 4 * MIB
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 10.0
CALL_TIMEOUT = 10.0

ECHO_SERVICE = "portal.testing.v1.Echo"
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA_SERVICE = "grpc.reflection.v1alpha.ServerReflection"

# grpcio channel options shared by every test channel: large messages, quick reconnects.
# Not `grpc.min_reconnect_backoff_ms`: gRPC core takes it as the minimum *connect timeout*
# (max(100 ms, value)), so a low value makes any handshake slower than that on a busy machine fail
# with "connection attempt timed out before receiving SETTINGS frame". The default (20 s) stays.
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", CLIENT_MAX_MESSAGE),
    ("grpc.max_receive_message_length", CLIENT_MAX_MESSAGE),
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
    ("grpc.enable_retries", 0),
    # A fresh subchannel per channel, so "new connection" really means a new TCP connection.
    ("grpc.use_local_subchannel_pool", 1),
]


# --------------------------------------------------------------------------------------------
# Generated stubs


_PROTO_FILES = [
    "portal/testing/v1/echo.proto",
    "bench/v1/bench.proto",
    "grpc/health/v1/health.proto",
    "grpc/reflection/v1/reflection.proto",
    "google/rpc/status.proto",
    "portal/identity/v1/identity.proto",
    "portal/audit/v1/audit.proto",
    "portal/entitlements/v1/entitlements.proto",
    "portal/gateway/v1/portal.proto",
]

_protos: types.SimpleNamespace | None = None


def _load_module_from(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def protos() -> types.SimpleNamespace:
    """Generates (once per process) and imports the Python stubs for the test protos.

    `grpc/...` and `bench/...` modules are loaded by file path under private names, because
    `grpc` is grpcio's own package and `bench` is a directory of this repository.
    """
    global _protos
    if _protos is not None:
        return _protos
    import grpc_tools
    from grpc_tools import protoc

    out_dir = Path(tempfile.mkdtemp(prefix="portal-interop-stubs-"))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    wkt_dir = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{wkt_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *_PROTO_FILES,
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed with {rc}: {' '.join(args)}")

    if str(out_dir) not in sys.path:
        sys.path.append(str(out_dir))
    echo_pb2 = importlib.import_module("portal.testing.v1.echo_pb2")
    echo_pb2_grpc = importlib.import_module("portal.testing.v1.echo_pb2_grpc")
    prefix = "_portal_interop_stubs"
    _protos = types.SimpleNamespace(
        out_dir=out_dir,
        echo=echo_pb2,
        echo_grpc=echo_pb2_grpc,
        bench=_load_module_from(out_dir / "bench/v1/bench_pb2.py", f"{prefix}.bench_v1_bench_pb2"),
        health=_load_module_from(out_dir / "grpc/health/v1/health_pb2.py", f"{prefix}.grpc_health_v1_health_pb2"),
        reflection=_load_module_from(
            out_dir / "grpc/reflection/v1/reflection_pb2.py", f"{prefix}.grpc_reflection_v1_reflection_pb2"
        ),
        status=_load_module_from(out_dir / "google/rpc/status_pb2.py", f"{prefix}.google_rpc_status_pb2"),
        identity=importlib.import_module("portal.identity.v1.identity_pb2"),
        identity_grpc=importlib.import_module("portal.identity.v1.identity_pb2_grpc"),
        audit=importlib.import_module("portal.audit.v1.audit_pb2"),
        audit_grpc=importlib.import_module("portal.audit.v1.audit_pb2_grpc"),
        entitlements=importlib.import_module("portal.entitlements.v1.entitlements_pb2"),
        entitlements_grpc=importlib.import_module("portal.entitlements.v1.entitlements_pb2_grpc"),
        gateway=importlib.import_module("portal.gateway.v1.portal_pb2"),
        gateway_grpc=importlib.import_module("portal.gateway.v1.portal_pb2_grpc"),
    )
    return _protos


# --------------------------------------------------------------------------------------------
# Small grpcio helpers


def make_channel(port: int, options: list | None = None) -> grpc.Channel:
    """An insecure grpcio channel to 127.0.0.1:port with the suite's options."""
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=list(CHANNEL_OPTIONS) + list(options or []))


def health_check(channel: grpc.Channel, service: str = "", timeout: float = CALL_TIMEOUT):
    """Calls grpc.health.v1.Health/Check and returns the response."""
    pb = protos().health
    call = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=pb.HealthCheckRequest.SerializeToString,
        response_deserializer=pb.HealthCheckResponse.FromString,
    )
    return call(pb.HealthCheckRequest(service=service), timeout=timeout)


def health_watch(channel: grpc.Channel, service: str = "", timeout: float = CALL_TIMEOUT):
    """Starts grpc.health.v1.Health/Watch and returns the response iterator (a grpc call)."""
    pb = protos().health
    call = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=pb.HealthCheckRequest.SerializeToString,
        response_deserializer=pb.HealthCheckResponse.FromString,
    )
    return call(pb.HealthCheckRequest(service=service), timeout=timeout)


def reflection_call(channel: grpc.Channel, requests: list, version: str = "v1", timeout: float = CALL_TIMEOUT) -> list:
    """Sends reflection requests on one ServerReflectionInfo stream and returns the responses.

    v1 and v1alpha messages are identical on the wire, so the v1 classes serve both versions.
    """
    pb = protos().reflection
    service = REFLECTION_V1_SERVICE if version == "v1" else REFLECTION_V1ALPHA_SERVICE
    call = channel.stream_stream(
        f"/{service}/ServerReflectionInfo",
        request_serializer=pb.ServerReflectionRequest.SerializeToString,
        response_deserializer=pb.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), timeout=timeout))


def list_services(channel: grpc.Channel, version: str = "v1") -> list[str]:
    """The service names server reflection lists."""
    pb = protos().reflection
    (response,) = reflection_call(channel, [pb.ServerReflectionRequest(list_services="")], version)
    assert response.WhichOneof("message_response") == "list_services_response", response
    return [s.name for s in response.list_services_response.service]


def wait_until(predicate, timeout: float, interval: float = 0.05):
    """Polls `predicate` until it returns a truthy value or `timeout` passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def std_b64(data: bytes) -> str:
    """Standard base64 with padding, as the Echo service reports `-bin` metadata."""
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------------
# Server processes


def required_binary(env_var: str) -> str:
    """The executable named by `env_var`; fails the test (never skips) when it is missing."""
    value = os.environ.get(env_var)
    if not value:
        pytest.fail(
            f"{env_var} is not set. Run the interop suite as "
            "`PORTAL_BIN=<path to portal> PORTAL_TEST_SERVER_BIN=<path to portal-test-server> "
            "python -m pytest -q Tests/Interop`.",
            pytrace=False,
        )
    path = Path(value)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"{env_var}={value} is not an executable file.", pytrace=False)
    return str(path)


def admin_samples(port: int) -> dict[tuple[str, frozenset], float]:
    """Every sample of an admin port's /metrics (parsed by the Prometheus client library), keyed by
    (sample name, labels as a frozenset of (name, value))."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        body = response.read().decode("utf-8")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body) for sample in family.samples}


def admin_metric(port: int, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(value for (sample, sample_labels), value in admin_samples(port).items()
               if sample == name and wanted <= sample_labels)


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def testing_clock_args() -> tuple[list[str], int]:
    """Arguments that run a service on a clock the test moves (`--testing-clock`), and its admin port."""
    port = free_port()
    return ["--testing-clock", "--admin-port", str(port)], port


def advance_clock(admin_port: int, seconds: float) -> None:
    """Moves the clock of a service run with `testing_clock_args` forward: sessions, invites and
    sign-in budgets see the time pass at once."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{admin_port}/testing/clock?advance_ms={int(seconds * 1000)}", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.read()


def free_port_base() -> int:
    """A `portal dev --port-base` whose four service ports, their admin ports and the web port are free now."""
    for _ in range(50):
        base = free_port()
        if base + 1003 > 65535:
            continue
        sockets = []
        try:
            for port in [base + offset for offset in (0, 1, 2, 3, 4, 1000, 1001, 1002, 1003)]:
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port base found")


def read_rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc/<pid>/status VmRSS."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class ServerProcess:
    """A server subprocess on a free loopback port, with stderr captured to a temporary file."""

    def __init__(self, argv: list[str], name: str, workdir: Path):
        self.argv = list(argv)
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.stderr_path = self.workdir / f"{name}.stderr.log"
        self.stdout_path = self.workdir / f"{name}.stdout.log"
        self.stopped = False
        self.signalled = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stderr_text(self, limit: int = 8000) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return "<no stderr captured>"
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return text or "<empty stderr>"

    def describe(self) -> str:
        return f"{self.name} ({' '.join(self.command)})\n--- server stderr ---\n{self.stderr_text()}"

    @property
    def command(self) -> list[str]:
        return [*self.argv, *database_arguments(self.argv), "--host", "127.0.0.1", "--port", str(self.port)]

    def start(self, timeout: float = STARTUP_TIMEOUT) -> "ServerProcess":
        """Starts the server and waits until Health/Check("") answers SERVING."""
        for attempt in range(3):
            self.port = free_port()
            stderr = open(self.stderr_path, "wb")
            stdout = open(self.stdout_path, "wb")
            try:
                self.proc = subprocess.Popen(self.command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
            finally:
                stderr.close()
                stdout.close()
            try:
                self._wait_healthy(timeout)
                return self
            except _PortTaken:
                if attempt == 2:
                    raise
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "never connected"
        # First wait for the listening socket, then for a SERVING health check.
        while time.monotonic() < deadline:
            self._fail_if_exited("before becoming healthy")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError as error:
                last_error = f"connect: {error}"
                time.sleep(0.02)
        channel = make_channel(self.port)
        try:
            while time.monotonic() < deadline:
                self._fail_if_exited("before becoming healthy")
                try:
                    response = health_check(channel, "", timeout=min(2.0, max(0.1, deadline - time.monotonic())))
                    if response.status == protos().health.HealthCheckResponse.SERVING:
                        return
                    last_error = f"health status {response.status}"
                except grpc.RpcError as error:
                    last_error = f"health check: {error.code()} {error.details()}"
                time.sleep(0.05)
        finally:
            channel.close()
        self.kill()
        pytest.fail(
            f"{self.name} did not report SERVING within {timeout:.0f}s (last: {last_error}).\n{self.describe()}",
            pytrace=False,
        )

    def _fail_if_exited(self, when: str) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return
        stderr = self.stderr_text()
        if "address already in use" in stderr.lower() or "eaddrinuse" in stderr.lower():
            raise _PortTaken()
        pytest.fail(f"{self.name} exited with code {code} {when}.\n{self.describe()}", pytrace=False)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def assert_running(self, context: str = "") -> None:
        """Fails (with the server's stderr) if the process has exited, e.g. crashed."""
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            pytest.fail(f"{self.name} is no longer running (exit code {code}) {context}.\n{self.describe()}", pytrace=False)

    def rss(self) -> int:
        return read_rss_bytes(self.pid)

    def terminate(self) -> None:
        """Sends SIGTERM (once)."""
        assert self.proc is not None
        if self.proc.poll() is None and not self.signalled:
            self.proc.send_signal(signal.SIGTERM)
            self.signalled = True

    def wait_exit(self, timeout: float = SHUTDOWN_TIMEOUT) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM, then asserts a clean exit (code 0) within 10 s; kills it otherwise."""
        if self.stopped or self.proc is None:
            return
        self.stopped = True
        crashed = self.proc.poll()
        if crashed is not None and not self.signalled:
            pytest.fail(f"{self.name} exited on its own with code {crashed} before teardown.\n{self.describe()}", pytrace=False)
        started = time.monotonic()
        self.terminate()
        code = self.wait_exit(SHUTDOWN_TIMEOUT)
        if code is None:
            self.kill()
            pytest.fail(f"{self.name} did not exit within {SHUTDOWN_TIMEOUT:.0f}s of SIGTERM.\n{self.describe()}", pytrace=False)
        if code != 0:
            pytest.fail(
                f"{self.name} exited with code {code} after SIGTERM ({time.monotonic() - started:.1f}s), expected 0.\n"
                f"{self.describe()}",
                pytrace=False,
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class _PortTaken(Exception):
    pass


def stop_all(processes: list[ServerProcess], channels: list[grpc.Channel] = ()) -> None:
    """Closes `channels`, stops `processes` newest first, and reports any unclean exit afterwards."""
    for channel in channels:
        channel.close()
    failures = []
    for process in reversed(processes):
        try:
            process.stop()
        except pytest.fail.Exception as failure:
            failures.append(str(failure))
        finally:
            process.kill()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


# --------------------------------------------------------------------------------------------
# The storage backend: SQLite files by default; PostgreSQL with PORTAL_TEST_BACKEND=postgres


DATA_SERVICES = ("entitlements", "identity", "audit")


def backend() -> str:
    """`postgres` when the suite runs the services on PostgreSQL (PORTAL_TEST_BACKEND), else `sqlite`."""
    return "postgres" if os.environ.get("PORTAL_TEST_BACKEND") == "postgres" else "sqlite"


if backend() == "postgres":
    # Audit instances sharing a database seal webhook secrets with one key (a fixed test key).
    os.environ.setdefault("PORTAL_WEBHOOK_SECRETS_KEY", "dGVzdC1rZXktZm9yLXdlYmhvb2stc2VjcmV0cy0zMmI=")


def database_arguments(argv: list[str]) -> list[str]:
    """`--database URL` for a `portal entitlements|identity|audit --data-dir D` command on PostgreSQL.

    Each data directory gets a database of its own, created on first use, so a restarted server
    (same data directory) finds its data again, as it would find its SQLite file.
    """
    if backend() != "postgres" or len(argv) < 2 or Path(argv[0]).name != "portal" or argv[1] not in DATA_SERVICES:
        return []
    if "--data-dir" not in argv or "--database" in argv:
        return []
    data_dir = str(Path(argv[argv.index("--data-dir") + 1]).resolve())
    return ["--database", postgres_database(hashlib.sha1(data_dir.encode()).hexdigest()[:20])]


def postgres_database(key: str) -> str:
    """The URL of database `it_<key>` on the test server (PORTAL_TEST_POSTGRES_URL), created when missing."""
    server = os.environ.get("PORTAL_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("PORTAL_TEST_BACKEND=postgres needs PORTAL_TEST_POSTGRES_URL (scripts/postgres start prints one)", pytrace=False)
    name = f"it_{key}"
    parts = urllib.parse.urlsplit(server)
    admin = urllib.parse.urlunsplit(parts._replace(query=""))
    exists = subprocess.run(["psql", admin, "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not exists:
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], capture_output=True, text=True, check=True)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


# --------------------------------------------------------------------------------------------
# The identity service's mail spool


MAIL_TIMEOUT = 10.0


@dataclass
class SpooledMail:
    """One invite mail file from `<data-dir>/mail-spool/<message-id>.eml`."""

    name: str
    headers: dict[str, str]
    body: str

    @property
    def to(self) -> str:
        return self.headers.get("to", "")

    @property
    def secret(self) -> str | None:
        """The secret of the `Invite code:` line (checked against the accept link's `code=`)."""
        code = link = None
        for line in self.body.splitlines():
            if line.startswith("Invite code:"):
                code = line.split(":", 1)[1].strip()
            elif line.startswith("Accept the invite:"):
                url = line.split(":", 1)[1].strip()
                values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("code")
                link = values[0] if values else None
        if code is not None and link is not None and code != link:
            raise AssertionError(f"mail {self.name}: invite code {code!r} differs from the link's code {link!r}")
        return code or link


def mail_spool(data_dir) -> Path:
    return Path(data_dir) / "mail-spool"


def spool_files(data_dir) -> set[str]:
    """Names of the `.eml` files in the mail spool now (pass them as `after_files` later)."""
    try:
        return {entry.name for entry in mail_spool(data_dir).iterdir() if entry.name.endswith(".eml")}
    except FileNotFoundError:
        return set()


def read_mail(path: Path) -> SpooledMail:
    text = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    headers: dict[str, str] = {}
    for line in head.split("\n"):
        if ":" in line and not line[:1].isspace():
            key, value = line.split(":", 1)
            headers.setdefault(key.strip().lower(), value.strip())
    return SpooledMail(path.name, headers, body)


def invite_mails(data_dir, email: str, after_files=()) -> list[SpooledMail]:
    """Spooled mails to `email` (case-insensitive) that are not among `after_files`."""
    known = set(after_files)
    mails = []
    for name in sorted(spool_files(data_dir) - known):
        try:
            mail = read_mail(mail_spool(data_dir) / name)
        except FileNotFoundError:
            continue
        if mail.to.strip("<>").lower() == email.lower():
            mails.append(mail)
    return mails


def wait_for_invite_secret(data_dir, email: str, after_files=(), timeout: float = MAIL_TIMEOUT) -> str:
    """Polls the spool (up to `timeout`) for a new mail to `email` and returns its invite secret.

    `after_files` are the spool's file names before the action that sends the mail (`spool_files`).
    Several new mails to the same address with different secrets fail the test: each invite or
    resend must send one mail.
    """
    deadline = time.monotonic() + timeout
    while True:
        mails = invite_mails(data_dir, email, after_files)
        if mails:
            secrets = {mail.secret for mail in mails}
            assert None not in secrets, f"invite mail without an invite code: {mails}"
            assert len(secrets) == 1, f"{len(mails)} new invite mails to {email} with different secrets: {mails}"
            return secrets.pop()
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"no invite mail to {email} in {mail_spool(data_dir)} within {timeout:.0f}s "
                f"(new files: {sorted(spool_files(data_dir) - set(after_files))})"
            )
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# gRPC message framing


def grpc_frame(payload: bytes, compressed: bool = False, announced_length: int | None = None) -> bytes:
    """A length-prefixed gRPC message: 1 byte flag + 4 bytes big-endian length + payload."""
    length = len(payload) if announced_length is None else announced_length
    return struct.pack(">BI", 1 if compressed else 0, length) + payload


def grpc_status_message(value: str | None) -> str | None:
    """Decodes a percent-encoded `grpc-message` value."""
    if value is None:
        return None
    return urllib.parse.unquote_to_bytes(value).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# Raw HTTP/2 client


GRPC_REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/portal.testing.v1.Echo/Get"),
    (":authority", "localhost"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]


def grpc_request_headers(path: str = "/portal.testing.v1.Echo/Get", extra: list | None = None, **overrides) -> list:
    """Request headers for a gRPC call; `overrides` replace by name (use `content_type=` etc.)."""
    replaced = {key.replace("_", "-"): value for key, value in overrides.items()}
    headers = []
    for name, value in GRPC_REQUEST_HEADERS:
        if name == ":path":
            value = path
        if name in replaced:
            value = replaced.pop(name)
            if value is None:
                continue
        headers.append((name, value))
    headers.extend(replaced.items())
    headers.extend(extra or [])
    return headers


def recv_chunk(sock: socket.socket, timeout: float) -> bytes | None:
    """Up to 1 MiB from `sock`: None when nothing came within `timeout`, b"" once the peer closed."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1 << 20)
    except socket.timeout:
        return None
    except (ConnectionResetError, BrokenPipeError):
        return b""


@dataclass
class StreamResult:
    """What came back on one HTTP/2 stream."""

    stream_id: int
    headers: list = field(default_factory=list)
    trailers: list = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    messages: list = field(default_factory=list)
    message_count: int = 0
    payload_bytes: int = 0
    keep_messages: bool = True
    plain: bool = False  # a plain HTTP body (the web listener), not gRPC messages
    ended: bool = False
    reset_code: int | None = None

    @property
    def done(self) -> bool:
        return self.ended or self.reset_code is not None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def final(self, name: str) -> str | None:
        """A header from the trailers, or from the headers of a trailers-only response."""
        for key, value in self.trailers:
            if key == name:
                return value
        if not self.trailers:
            return self.header(name)
        return None

    @property
    def http_status(self) -> int | None:
        value = self.header(":status")
        return int(value) if value is not None else None

    @property
    def grpc_status(self) -> int | None:
        value = self.final("grpc-status")
        return int(value) if value is not None else None

    @property
    def grpc_message(self) -> str | None:
        return grpc_status_message(self.final("grpc-message"))

    def all_headers(self) -> list:
        return list(self.headers) + list(self.trailers)

    def absorb(self, data: bytes) -> None:
        """Appends DATA bytes, splitting complete gRPC messages off the front (unless the body is plain)."""
        self.body.extend(data)
        if self.plain:
            self.payload_bytes += len(data)
            return
        while len(self.body) >= 5:
            flag, length = struct.unpack(">BI", self.body[:5])
            if len(self.body) < 5 + length:
                break
            payload = bytes(self.body[5 : 5 + length])
            del self.body[: 5 + length]
            self.message_count += 1
            self.payload_bytes += length
            if self.keep_messages:
                self.messages.append((flag, payload))

    def describe(self) -> str:
        return (
            f"stream {self.stream_id}: headers={self.headers} trailers={self.trailers} "
            f"messages={self.message_count} leftover={len(self.body)}B ended={self.ended} reset={self.reset_code}"
        )


class RawH2Client:
    """A plain-text HTTP/2 client on one TCP connection, driven by the `h2` state machine."""

    def __init__(self, port: int, timeout: float = 10.0, auto_ack: bool = True):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.auto_ack = auto_ack
        self.streams: dict[int, StreamResult] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = False  # the peer closed the TCP connection
        self.events: list = []
        self.conn.initiate_connection()
        self.flush()

    # -- sending

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.send_raw(data)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def start_request(self, headers: list, end_stream: bool = False, keep_messages: bool = True, plain: bool = False) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.streams[stream_id] = StreamResult(stream_id, keep_messages=keep_messages, plain=plain)
        self.flush()
        return stream_id

    def send_body(self, stream_id: int, body: bytes, end_stream: bool = True) -> None:
        """Sends DATA, respecting the peer's flow-control window and frame size."""
        view = memoryview(body)
        while view:
            window = self.conn.local_flow_control_window(stream_id)
            chunk = min(window, self.conn.max_outbound_frame_size, len(view))
            if chunk <= 0:
                if not self.read_some(timeout=5):
                    raise ConnectionError("connection closed while waiting for flow-control window")
                continue
            self.conn.send_data(stream_id, bytes(view[:chunk]))
            view = view[chunk:]
            self.flush()
        if end_stream:
            self.conn.end_stream(stream_id)
            self.flush()

    def request(self, headers: list, body: bytes = b"", keep_messages: bool = True, plain: bool = False) -> int:
        """Starts a request with `body` as its complete DATA, then half-closes."""
        if not body:
            return self.start_request(headers, end_stream=True, keep_messages=keep_messages, plain=plain)
        stream_id = self.start_request(headers, end_stream=False, keep_messages=keep_messages, plain=plain)
        self.send_body(stream_id, body, end_stream=True)
        return stream_id

    # -- receiving

    def read_some(self, timeout: float = 1.0) -> bool:
        """Reads once (up to `timeout`) and handles the events; False when the connection is closed."""
        if self.closed:
            return False
        data = recv_chunk(self.sock, timeout)
        if data is None:
            return True
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            # h2 refuses frames that follow a GOAWAY (for example RST_STREAM(REFUSED_STREAM) for
            # streams past its last-stream-id) and drops the events of that read: recover the
            # GOAWAY from the raw bytes so the server's answer is still seen.
            self.events.append(error)
            codes = goaway_codes(data)
            if codes and self.goaway is None:
                self.goaway = h2.events.ConnectionTerminated()
                self.goaway.error_code = codes[0]
            self.closed = True
            return False
        self._handle(events)
        try:
            self.flush()
        except OSError:
            self.closed = True
            return False
        return True

    def _handle(self, events: list) -> None:
        for event in events:
            self.events.append(event)
            stream_id = getattr(event, "stream_id", None)
            result = self.streams.get(stream_id) if stream_id else None
            if isinstance(event, h2.events.ResponseReceived) and result:
                result.headers = list(event.headers)
            elif isinstance(event, h2.events.TrailersReceived) and result:
                result.trailers = list(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                if result:
                    result.absorb(event.data)
                if self.auto_ack and event.flow_controlled_length:
                    try:
                        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    except h2.exceptions.StreamClosedError:
                        pass
            elif isinstance(event, h2.events.StreamEnded) and result:
                result.ended = True
            elif isinstance(event, h2.events.StreamReset) and result:
                result.reset_code = int(event.error_code)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event

    def wait_for(self, stream_id: int, timeout: float = 10.0) -> StreamResult:
        """Reads until the stream ends or is reset, the connection closes, or `timeout` passes."""
        result = self.streams[stream_id]
        deadline = time.monotonic() + timeout
        while not result.done and time.monotonic() < deadline:
            if not self.read_some(timeout=min(0.5, max(0.01, deadline - time.monotonic()))):
                break
        return result

    def drain(self, duration: float) -> None:
        """Reads whatever arrives for `duration` seconds (or until the connection closes)."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            if not self.read_some(timeout=min(0.2, max(0.01, deadline - time.monotonic()))):
                break

    def wait_closed(self, timeout: float) -> bool:
        """True when the server closes the connection within `timeout`."""
        self.drain(timeout)
        return self.closed

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawH2Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Reads from a raw socket until EOF/reset or `timeout`; returns (closed, bytes received)."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, bytes(received)
        if not data:
            return True, bytes(received)
        received.extend(data)
    return False, bytes(received)


def goaway_codes(raw: bytes) -> list[int]:
    """Error codes of the GOAWAY frames in a raw server-to-client byte stream."""
    codes = []
    offset = 0
    while offset + 9 <= len(raw):
        length = int.from_bytes(raw[offset : offset + 3], "big")
        frame_type = raw[offset + 3]
        payload = raw[offset + 9 : offset + 9 + length]
        if frame_type == 0x7 and len(payload) >= 8:
            codes.append(int.from_bytes(payload[4:8], "big"))
        offset += 9 + length
    return codes


def assert_server_healthy(server: ServerProcess, context: str = "") -> None:
    """The server process is alive and answers a normal Echo/Get on a new grpcio connection."""
    server.assert_running(context)
    pb = protos().echo
    channel = make_channel(server.port)
    try:
        stub = protos().echo_grpc.EchoStub(channel)
        try:
            response = stub.Get(pb.EchoRequest(message="still alive?", payload=b"\x01\x02"), timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            pytest.fail(
                f"server no longer answers a normal unary call {context}: {error.code()} {error.details()}\n"
                f"{server.describe()}",
                pytrace=False,
            )
        assert response.message == "still alive?"
        assert response.payload == b"\x01\x02"
    finally:
        channel.close()
    server.assert_running(context)


# --------------------------------------------------------------------------------------------
# Hand-made HTTP/2 frames, for floods and malformed input the h2 state machine will not produce

CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_DATA, FRAME_HEADERS, FRAME_RST_STREAM, FRAME_SETTINGS = 0x0, 0x1, 0x3, 0x4
FRAME_PING, FRAME_GOAWAY, FRAME_WINDOW_UPDATE, FRAME_CONTINUATION = 0x6, 0x7, 0x8, 0x9
FLAG_END_STREAM, FLAG_ACK, FLAG_END_HEADERS = 0x1, 0x1, 0x4
ENHANCE_YOUR_CALM = 0xB


def h2_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"", length: int | None = None) -> bytes:
    """A raw HTTP/2 frame; `length` may lie about the payload size."""
    size = len(payload) if length is None else length
    return size.to_bytes(3, "big") + bytes([frame_type, flags]) + (stream_id & 0x7FFFFFFF).to_bytes(4, "big") + payload


@dataclass
class RawFrame:
    type: int
    flags: int
    stream_id: int
    payload: bytes


def parse_frames(raw: bytes) -> tuple[list[RawFrame], bytes]:
    """Complete frames in `raw`, and the incomplete rest."""
    frames = []
    offset = 0
    while offset + 9 <= len(raw):
        length = int.from_bytes(raw[offset : offset + 3], "big")
        if offset + 9 + length > len(raw):
            break
        frame_type, flags = raw[offset + 3], raw[offset + 4]
        stream_id = int.from_bytes(raw[offset + 5 : offset + 9], "big") & 0x7FFFFFFF
        frames.append(RawFrame(frame_type, flags, stream_id, bytes(raw[offset + 9 : offset + 9 + length])))
        offset += 9 + length
    return frames, bytes(raw[offset:])


class RawFrameConnection:
    """A TCP connection that speaks HTTP/2 by hand: preface, SETTINGS exchange, then raw frames."""

    def __init__(self, port: int, timeout: float = 10.0):
        import hpack

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.frames: list[RawFrame] = []
        self.closed = False
        self.send_failed: OSError | None = None
        self._pending = b""
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder(max_header_list_size=1 << 30)
        self.decoder.max_allowed_table_size = 1 << 20
        self._header_block: dict[int, bytearray] = {}
        self.headers: dict[int, list[list]] = {}  # stream id -> decoded header blocks

    def handshake(self, timeout: float = 5.0) -> None:
        """Sends the preface and an empty SETTINGS frame, and acknowledges the server's SETTINGS."""
        self.send(CLIENT_PREFACE + h2_frame(FRAME_SETTINGS, 0, 0))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(f.type == FRAME_SETTINGS and not f.flags & FLAG_ACK for f in self.frames):
                self.send(h2_frame(FRAME_SETTINGS, FLAG_ACK, 0))
                return
            if not self.read(timeout=0.2):
                break
        raise AssertionError(f"no SETTINGS from the server (frames: {self.frames}, closed: {self.closed})")

    def send(self, data: bytes) -> bool:
        """Sends bytes; False (and remembers the error) when the server has stopped accepting them."""
        try:
            self.sock.sendall(data)
            return True
        except (OSError, socket.timeout) as error:
            self.send_failed = error
            return False

    def read(self, timeout: float) -> bool:
        """Reads once; False once the server has closed the connection."""
        if self.closed:
            return False
        data = recv_chunk(self.sock, timeout)
        if data is None:
            return True
        if not data:
            self.closed = True
            return False
        frames, self._pending = parse_frames(self._pending + data)
        for frame in frames:
            self.frames.append(frame)
            if frame.type in (FRAME_HEADERS, FRAME_CONTINUATION):
                block = self._header_block.setdefault(frame.stream_id, bytearray())
                payload = frame.payload
                if frame.type == FRAME_HEADERS:
                    payload = _strip_headers_padding(frame.flags, payload)
                block.extend(payload)
                if frame.flags & FLAG_END_HEADERS:
                    decoded = self.decoder.decode(bytes(self._header_block.pop(frame.stream_id)), raw=False)
                    self.headers.setdefault(frame.stream_id, []).append(list(decoded))
        return True

    def read_until(self, predicate, timeout: float) -> bool:
        """Reads until `predicate()` holds, the connection closes, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if not self.read(timeout=min(0.2, max(0.01, deadline - time.monotonic()))):
                break
        return bool(predicate())

    def goaway_codes(self) -> list[int]:
        return [int.from_bytes(f.payload[4:8], "big") for f in self.frames if f.type == FRAME_GOAWAY]

    def reset_codes(self, stream_id: int) -> list[int]:
        return [
            int.from_bytes(f.payload[:4], "big") for f in self.frames if f.type == FRAME_RST_STREAM and f.stream_id == stream_id
        ]

    def stream_finished(self, stream_id: int) -> bool:
        return any(
            f.stream_id == stream_id and (f.type == FRAME_RST_STREAM or (f.type in (FRAME_HEADERS, FRAME_DATA) and f.flags & FLAG_END_STREAM))
            for f in self.frames
        )

    def final_header(self, stream_id: int, name: str) -> str | None:
        """The last value of `name` in the stream's header blocks (trailers win over headers)."""
        value = None
        for block in self.headers.get(stream_id, []):
            for key, item in block:
                if key == name:
                    value = item
        return value

    def encode_headers(self, headers: list) -> bytes:
        return self.encoder.encode(headers, huffman=False)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawFrameConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _strip_headers_padding(flags: int, payload: bytes) -> bytes:
    if flags & 0x8:  # PADDED
        pad = payload[0]
        payload = payload[1 : len(payload) - pad]
    if flags & 0x20:  # PRIORITY
        payload = payload[5:]
    return payload
