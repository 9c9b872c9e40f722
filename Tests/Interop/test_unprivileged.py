"""A service started as an unprivileged user with every capability dropped, as a container platform
runs it (Kubernetes `capabilities: drop: ["ALL"]`, `runAsNonRoot`), serves gRPC, the web listener
and the admin port: no socket option it sets needs a privilege (a TCP option set at the socket level
once asked for `SO_DEBUG`, which needs CAP_NET_ADMIN, and every connection was closed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest

import support

P = support.protos()
NOBODY = 65534


def unprivileged(argv: list[str]) -> list[str]:
    """`argv` run as nobody with no capabilities (effective, permitted, inheritable, ambient, bounding)."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
            "--ambient-caps=-all", "--bounding-set=-all", *argv]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="dropping to another user needs root and util-linux's setpriv")
def test_a_service_without_privileges_serves_calls(portal_bin, start_server, request):
    # A folder of nobody's where nobody can reach it (pytest's own folders are root's alone).
    data = Path(tempfile.mkdtemp(prefix="portal-unprivileged-"))
    os.chmod(data, 0o755)
    os.chown(data, NOBODY, NOBODY)
    request.addfinalizer(lambda: shutil.rmtree(data, ignore_errors=True))
    admin_port, web_port = support.free_port(), support.free_port()
    server = start_server(unprivileged([
        portal_bin, "gateway", "--data-dir", str(data), "--admin-port", str(admin_port), "--web-port", str(web_port)]))
    for _ in range(3):  # each call on a connection of its own
        channel = support.make_channel(server.port)
        try:
            assert support.health_check(channel).status == P.health.HealthCheckResponse.SERVING
        finally:
            channel.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=5) as page:
        assert page.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=5) as ready:
        assert ready.status == 200
    with open(f"/proc/{server.pid}/status") as process:
        status = process.read()
    assert f"Uid:\t{NOBODY}\t{NOBODY}\t{NOBODY}\t{NOBODY}" in status
    assert "CapEff:\t0000000000000000" in status
