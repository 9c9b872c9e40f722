"""What the web benchmark's scripts share: a `portal dev` process on a data directory, Python gRPC
stubs generated from proto/, sign-in over gRPC and over the web listener's Connect JSON API.
"""
from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "ada@northwind.example"     # Admin of Northwind, Viewer of Tailspin: chooses at sign-in
PASSWORD = "portal-demo-2026"
ORGANIZATION_NAME = "Northwind Robotics"
SERVICE_PATH = "/portal.gateway.v1.PortalService/"
SESSION_COOKIE = "__Host-portal-session"


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- stubs

_STUBS: Path | None = None


def stubs():
    """The generated modules (gateway P/PG, audit A/AG), generated once per process into a temporary folder."""
    global _STUBS
    if _STUBS is None:
        from grpc_tools import protoc
        import grpc_tools
        out = Path(tempfile.mkdtemp(prefix="portal-web-bench-stubs-"))
        include = Path(grpc_tools.__file__).parent / "_proto"
        protos = ["portal/gateway/v1/portal.proto", "portal/identity/v1/identity.proto",
                  "portal/entitlements/v1/entitlements.proto", "portal/audit/v1/audit.proto"]
        code = protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}",
                            *[str(ROOT / "proto" / p) for p in protos]])
        if code != 0:
            raise RuntimeError("grpc_tools.protoc failed on proto/")
        sys.path.insert(0, str(out))
        _STUBS = out
    from portal.audit.v1 import audit_pb2 as A, audit_pb2_grpc as AG
    from portal.gateway.v1 import portal_pb2 as P, portal_pb2_grpc as PG
    return P, PG, A, AG


# ---------------------------------------------------------------------------------------------- portal dev

def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port_base(start: int) -> int:
    """`start`, or the next multiple of 10 above it, whose ports (base..base+4, admin base+1000..+1003) are all free."""
    base = start
    while any(port_open(p) for p in [*range(base, base + 5), *range(base + 1000, base + 1004)]):
        base += 10
    return base


class PortalDev:
    """`portal dev --data-dir D --port-base B`, its output in files beside the data directory."""

    def __init__(self, binary: str, data_dir: Path, port_base: int, log_level: str = "warning", site_dir: str | None = None):
        self.data_dir = Path(data_dir)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.base = free_port_base(port_base)
        self.gateway, self.entitlements, self.identity, self.audit, self.web = (self.base + i for i in range(5))
        self.out = self.data_dir.parent / f"{self.data_dir.name}.dev.stdout.log"
        self.err = self.data_dir.parent / f"{self.data_dir.name}.dev.stderr.log"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([binary, "dev", "--data-dir", str(self.data_dir), "--port-base", str(self.base),
                                          "--log-level", log_level, *(["--site-dir", site_dir] if site_dir else [])],
                                         stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.started = time.perf_counter()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.web}"

    def organization(self, timeout: float = 300) -> str:
        """Waits for the sign-in instructions (seeding a fresh directory first) and returns the demo organization's id."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"portal dev exited with {self.proc.returncode}:\n{self.err.read_text()[-3000:]}")
            found = re.search(r"Demo organization (org_[0-9a-f]+)", self.out.read_text())
            if found and port_open(self.web):
                return found.group(1)
            time.sleep(0.1)
        raise RuntimeError(f"portal dev printed no demo organization within {timeout:.0f} s:\n{self.err.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log(f"# portal dev (pid {self.proc.pid}) still running 30 s after SIGTERM: SIGKILL")
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to one of the services' SQLite files (also while the service runs: WAL)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


# ---------------------------------------------------------------------------------------------- signing in

def grpc_session(dev: PortalDev, organization: str):
    """A gateway stub and Ada's bearer metadata in the organization (gRPC Login names the organization directly)."""
    import grpc
    P, PG, _, _ = stubs()
    gateway = PG.PortalServiceStub(grpc.insecure_channel(f"127.0.0.1:{dev.gateway}",
                                                         options=[("grpc.max_receive_message_length", 64 << 20)]))
    login = gateway.Login(P.LoginRequest(organization_id=organization, email=ADMIN_EMAIL, password=PASSWORD), timeout=60)
    return gateway, [("authorization", f"Bearer {login.session_token}")]


class ConnectSession:
    """Connect JSON calls to the web listener over one HTTP/1.1 keep-alive connection, with the session cookie
    Ada gets after choosing the organization named `organization_name` (as the browser's sign-in does)."""

    def __init__(self, dev: PortalDev, organization_name: str = ORGANIZATION_NAME):
        self.port = dev.web
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        self.cookie = ""
        first = self.call("Login", {"email": ADMIN_EMAIL, "password": PASSWORD})
        choices = {c.get("name"): c["organizationId"] for c in first.get("organizationChoices", [])}
        if first.get("choiceToken"):
            if organization_name not in choices:
                raise RuntimeError(f"sign-in offered {sorted(choices)}, not {organization_name}")
            self.call("Login", {"choiceToken": first["choiceToken"], "organizationId": choices[organization_name]})
        if not self.cookie:
            raise RuntimeError("the web listener set no session cookie at sign-in")

    def call(self, method: str, request: dict | None = None) -> dict:
        """A unary POST, as the portal makes calls with side effects."""
        return self._send("POST", SERVICE_PATH + method, json.dumps(request or {}).encode(),
                          {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}, method)

    def get(self, method: str, request: dict) -> dict:
        """A Connect GET, as the portal's pages read (`call(…, { read: true })` in app/connect.js)."""
        query = urllib.parse.urlencode({"connect": "v1", "encoding": "json", "message": json.dumps(request, separators=(",", ":"))})
        return self._send("GET", f"{SERVICE_PATH}{method}?{query}", None, {}, method)

    def _send(self, verb: str, path: str, body: bytes | None, headers: dict, method: str) -> dict:
        if self.cookie:
            headers["Cookie"] = self.cookie
        for attempt in (1, 2):
            try:
                self.conn.request(verb, path, body=body, headers=headers)
                response = self.conn.getresponse()
                break
            except (http.client.HTTPException, ConnectionError):
                if attempt == 2:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        data = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith(SESSION_COOKIE + "="):
                self.cookie = value.split(";", 1)[0]
        if response.status != 200:
            raise RuntimeError(f"{method}: HTTP {response.status}: {data[:300]!r}")
        return json.loads(data)

    def close(self) -> None:
        self.conn.close()
