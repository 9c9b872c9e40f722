"""Fixtures: server binaries from the environment, shared and fresh servers, grpcio channels.

Run as `PORTAL_BIN=... PORTAL_TEST_SERVER_BIN=... python -m pytest -q Tests/Interop`.
"""

from __future__ import annotations

import itertools

import pytest

import support

_names = itertools.count(1)


@pytest.fixture(scope="session")
def test_server_bin() -> str:
    """Path of the `portal-test-server` executable (env PORTAL_TEST_SERVER_BIN)."""
    return support.required_binary("PORTAL_TEST_SERVER_BIN")


@pytest.fixture(scope="session")
def portal_bin() -> str:
    """Path of the `portal` executable (env PORTAL_BIN)."""
    return support.required_binary("PORTAL_BIN")


@pytest.fixture(scope="session")
def pb():
    """The generated protobuf/grpc modules."""
    return support.protos()


@pytest.fixture(scope="session")
def test_server(test_server_bin, tmp_path_factory):
    """One portal-test-server shared by the tests that cannot disturb each other."""
    server = support.ServerProcess([test_server_bin], "shared-test-server", tmp_path_factory.mktemp("shared-test-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path):
    """Starts servers that are stopped (SIGTERM, exit 0 within 10 s asserted) when the test ends."""
    servers: list[support.ServerProcess] = []

    def start(argv: list[str], name: str | None = None) -> support.ServerProcess:
        name = name or f"server-{next(_names)}"
        server = support.ServerProcess(argv, name, tmp_path / name)
        servers.append(server)
        return server.start()

    yield start
    failures = []
    for server in servers:
        try:
            server.stop()
        except pytest.fail.Exception as failure:  # stop every server before reporting
            failures.append(str(failure))
        finally:
            server.kill()
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture
def fresh_test_server(test_server_bin, start_server):
    """A portal-test-server of the test's own, for tests that could disturb other tests."""
    return start_server([test_server_bin], "fresh-test-server")


@pytest.fixture(scope="session")
def channel(test_server):
    """A grpcio channel to the shared test server."""
    channel = support.make_channel(test_server.port)
    yield channel
    channel.close()


@pytest.fixture(scope="session")
def echo(channel, pb):
    """A generated Echo stub on the shared channel."""
    return pb.echo_grpc.EchoStub(channel)


@pytest.fixture
def fresh_channel(fresh_test_server):
    """A grpcio channel to the test's own server."""
    channel = support.make_channel(fresh_test_server.port)
    yield channel
    channel.close()
