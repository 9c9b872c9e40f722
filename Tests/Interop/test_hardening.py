"""Hostile and odd input against the real four-service stack: every documented length limit of
every request field (read from the proto comments, independently of the generator), errors that stay
small whatever the input, idempotency keys bound to the whole request, the audit user filter
ignoring case, signed page tokens, backends that believe caller metadata only from the gateway, and
startup failures that name the service, the address and the cause.
"""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.timestamp_pb2 import Timestamp

import support
from test_gateway import Stack, bearer, outcome, refused, unique

T = 10
P = support.protos()
G, I, E, A = P.gateway, P.identity, P.entitlements, P.audit
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
LIMIT = re.compile(r"[Aa]t most ([0-9][0-9,]*) (characters|bytes|items)")
FDP = descriptor_pb2.FieldDescriptorProto
MIB = 1 << 20


# --------------------------------------------------------------------------------------------
# The limits as the proto comments document them


def documented_limits() -> list[tuple[str, str, str, str, dict]]:
    """(package, service, method, field path, limits) for every limited field a portal service
    receives, from the proto files' own comments (protoc with source info)."""
    from grpc_tools import protoc
    import grpc_tools

    out = Path(P.out_dir) / "with-comments.pb"
    files = sorted(str(p.relative_to(support.PROTO_DIR)) for p in support.PROTO_DIR.glob("portal/*/v1/*.proto"))
    wkt = Path(grpc_tools.__file__).parent / "_proto"
    assert protoc.main(["protoc", f"-I{support.PROTO_DIR}", f"-I{wkt}", "--include_source_info", "--include_imports",
                        f"--descriptor_set_out={out}", *files]) == 0
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    comments, messages = {}, {}
    for f in descriptor_set.file:
        for location in f.source_code_info.location:
            comments[(f.name, tuple(location.path))] = location.leading_comments

        def walk(prefix, path, message_types):
            for index, m in enumerate(message_types):
                name = f"{prefix}.{m.name}"
                messages[name] = (f.name, path + (index,), m)
                walk(name, path + (index, 3), m.nested_type)

        walk(f".{f.package}", (4,), f.message_type)

    def limits(message_name, index, field):
        file_name, path, _ = messages[message_name]
        text = comments.get((file_name, path + (2, index)), "")
        if field.HasField("oneof_index"):
            text += " " + comments.get((file_name, path + (8, field.oneof_index)), "")
        return {unit: int(number.replace(",", "")) for number, unit in LIMIT.findall(text)}

    def fields(message_name, prefix, depth=0):
        _, _, m = messages[message_name]
        for index, field in enumerate(m.field):
            found = limits(message_name, index, field)
            repeated = field.label == FDP.LABEL_REPEATED
            path = f"{prefix}{field.name}"
            if found:
                yield path, field, found
            if field.type == FDP.TYPE_MESSAGE and not field.type_name.startswith(".google.") and depth < 3:
                yield from fields(field.type_name, f"{path}[0]." if repeated else f"{path}.", depth + 1)

    cases = []
    for f in descriptor_set.file:
        if not f.package.startswith("portal.") or f.package == "portal.testing.v1":
            continue
        for service in f.service:
            for method in service.method:
                for path, field, found in fields(method.input_type, ""):
                    cases.append((f.package, service.name, method.name, path, found, field))
    return cases


CASES = documented_limits()


def test_every_string_and_repeated_field_of_every_request_documents_a_limit():
    """The generator refuses a request field without one; this checks the reading the tests rely on."""
    paths = {(service, method, path) for _, service, method, path, _, _ in CASES}
    assert ("PortalService", "InviteMember", "email") in paths
    assert ("EntitlementsService", "UpsertProduct", "product.product_description") in paths
    assert ("AuditService", "AppendEvents", "events[0].message") in paths
    assert len(CASES) > 150, len(CASES)


def stub_for(stack: Stack, package: str):
    return {"portal.gateway.v1": stack.portal, "portal.identity.v1": stack.identity,
            "portal.entitlements.v1": stack.entitlements, "portal.audit.v1": stack.audit}[package]


def request_with(package: str, method: str, path: str, value, repeated: bool = False):
    """The method's request with only the field at `path` set (`a[0].b` builds one item of `a`)."""
    module = {"portal.gateway.v1": G, "portal.identity.v1": I, "portal.entitlements.v1": E, "portal.audit.v1": A}[package]
    request = getattr(module, f"{method}Request")()
    target = request
    parts = path.split(".")
    for part in parts[:-1]:
        if part.endswith("[0]"):
            target = getattr(target, part[:-3]).add()
        else:
            target = getattr(target, part)
    last = parts[-1]
    if repeated:
        getattr(target, last).extend(value)
    else:
        setattr(target, last, value)
    return request


def over_limit(field, limits):
    """The shortest value each limit refuses, and what the refusal says."""
    values = []
    if "items" in limits:
        count = limits["items"] + 1
        item = 1 if field.type == FDP.TYPE_ENUM else (b"x" if field.type == FDP.TYPE_BYTES else "x")
        if field.type != FDP.TYPE_MESSAGE:
            values.append(([item] * count, f"must hold at most {limits['items']} items", ""))
    unit = "characters" if "characters" in limits else "bytes" if "bytes" in limits else None
    if unit and field.type in (FDP.TYPE_STRING, FDP.TYPE_BYTES):
        # Characters are counted as Unicode scalars: limit + 1 two-byte letters is refused, and
        # `limit` of them is not refused for length when the unit is characters.
        text = "é" * (limits[unit] + 1) if unit == "characters" else "x" * (limits[unit] + 1)
        value = text.encode() if field.type == FDP.TYPE_BYTES else text
        repeated = field.label == FDP.LABEL_REPEATED
        values.append(([value] if repeated else value, f"must be at most {limits[unit]} {unit}", "[0]" if repeated else ""))
    return values


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory):
    stack = Stack(portal_bin, tmp_path_factory.mktemp("hardening")).start()
    yield stack
    stack.stop()


def answer(call, method: str, request):
    """A call's answer: an export read to its end, a live stream (Watch…) up to its first message."""
    if method.startswith("Export"):
        return list(call(request, timeout=T))
    if method.startswith("Watch"):
        stream = call(request, timeout=T)
        first = next(iter(stream))
        stream.cancel()
        return first
    return call(request, timeout=T)


@pytest.mark.parametrize("package, service, method, path, limits, field", CASES,
                         ids=[f"{c[1]}.{c[2]}.{c[3]}" for c in CASES])
def test_a_field_over_its_documented_limit_is_refused_naming_it(stack, package, service, method, path, limits, field):
    """limit + 1 is INVALID_ARGUMENT "<field path>: must be at most N …", before authentication or
    any handler; for character limits, exactly N two-byte characters are not refused for length."""
    call = getattr(stub_for(stack, package), method)
    for value, problem, element in over_limit(field, limits):
        request = request_with(package, method, path, value, field.label == FDP.LABEL_REPEATED)
        message = refused(lambda: answer(call, method, request), INVALID_ARGUMENT)
        assert message.startswith(f"{path}{element}: {problem}"), f"{method} {path}: {message!r}"
    if "characters" in limits and field.type == FDP.TYPE_STRING and field.label != FDP.LABEL_REPEATED:
        request = request_with(package, method, path, "é" * limits["characters"])
        code, result = outcome(lambda: answer(call, method, request))
        if code != grpc.StatusCode.OK:
            assert "must be at most" not in (result.details() or "") or not result.details().startswith(path), result.details()


# --------------------------------------------------------------------------------------------
# Errors stay small


def test_a_megabyte_of_email_is_refused_at_once_with_a_short_message(stack):
    """The case first reported: a 1 MiB email to InviteMember (gateway) and CreateInvite (identity)
    is INVALID_ARGUMENT within a second, and the message does not repeat the input."""
    for call, request in (
        (stack.portal.InviteMember, G.InviteMemberRequest(email="a" * MIB + "@example.com", role=I.ROLE_VIEWER)),
        (stack.identity.CreateInvite, I.CreateInviteRequest(organization_id="org_x", email="a" * MIB + "@example.com")),
        (stack.portal.ExportActivationsCsv, G.ExportActivationsCsvRequest(time_zone="Z" * 100_000)),
        (stack.portal.ListProducts, G.ListProductsRequest(search_text="s" * 100_000)),
        (stack.identity.ListMembers, I.ListMembersRequest(organization_id="org_x", search_text="s" * 100_000)),
    ):
        started = time.monotonic()
        streaming = isinstance(request, G.ExportActivationsCsvRequest)
        message = refused(lambda: list(call(request, timeout=T)) if streaming else call(request, timeout=T), INVALID_ARGUMENT)
        assert time.monotonic() - started < 2.0
        assert len(message) < 120, message


def test_an_invalid_value_is_quoted_by_its_first_64_characters(stack):
    """A malformed email under the length limit is named by a 64-character prefix and an ellipsis."""
    org = stack.create_orgs(("Quinn", "Quote"))[0]
    email = "q" * 200 + "-no-at-sign"
    message = refused(lambda: stack.identity.CreateInvite(I.CreateInviteRequest(organization_id=org.id, email=email, role=I.ROLE_VIEWER),
                                                          metadata=stack.acting(org.admin), timeout=T), INVALID_ARGUMENT)
    assert message == f'email: "{"q" * 64}…" is not an email address', message


def test_a_huge_handler_error_reaches_the_caller_truncated(test_server, pb):
    """A handler failing with a 1 MiB message and 1 MiB of details: grpcio gets the status at once,
    with the message cut to 1,024 bytes and trailers well under its 8 KiB metadata limit."""
    channel = support.make_channel(test_server.port)
    try:
        echo = pb.echo_grpc.EchoStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as failure:
            echo.Get(pb.echo.EchoRequest(message="é" * MIB, fail_with_code=9), timeout=T)
        assert time.monotonic() - started < 2.0
        assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = failure.value.details()
        assert details.endswith("…") and len(details.encode()) <= 1024, len(details.encode())
    finally:
        channel.close()

    client = support.RawH2Client(test_server.port)
    body = support.grpc_frame(pb.echo.EchoRequest(message="x" * MIB, fail_with_code=13).SerializeToString())
    stream_id = client.request(support.grpc_request_headers(path="/portal.testing.v1.Echo/Get"), body)
    deadline = time.monotonic() + T
    while not client.streams[stream_id].done and time.monotonic() < deadline:
        client.read_some(0.5)
    result = client.streams[stream_id]
    assert result.done and result.grpc_status == 13, result.describe()
    fields = result.trailers or result.headers
    size = sum(len(name) + len(value) + 32 for name, value in fields)
    assert size <= 7 * 1024, f"trailers of {size} bytes"
    assert len(result.final("grpc-message")) <= 3 * 1024


# --------------------------------------------------------------------------------------------
# Idempotency, filters, page tokens


@pytest.fixture(scope="module")
def org_with_licenses(stack):
    org = stack.create_orgs(("Ida", "Empotent"))[0]
    product = stack.upsert_product(f"Keyed {unique()}")
    entitlement = stack.transfer(org, [(product, 50)])
    token = stack.login(org.admin)
    return org, product, entitlement, token


def test_an_idempotency_key_binds_the_whole_request(stack, org_with_licenses):
    """The same key and request returns the first activation; the same key with any field changed
    is INVALID_ARGUMENT naming idempotency_key and the field, and activates nothing."""
    org, product, entitlement, token = org_with_licenses
    key = uuid.uuid4().hex
    base = dict(entitlement_id=entitlement, product_id=product, quantity=2, project_name="Apollo",
                project_manager="Grace Hopper", serial_number="SN-1", idempotency_key=key)
    first = stack.portal.Activate(G.ActivateRequest(**base), metadata=bearer(token), timeout=T).activation
    again = stack.portal.Activate(G.ActivateRequest(**base), metadata=bearer(token), timeout=T).activation
    assert again.activation_id == first.activation_id
    for field, value in (("quantity", 3), ("project_name", "Gemini"), ("project_manager", "Ada"), ("serial_number", "SN-2")):
        message = refused(lambda: stack.portal.Activate(G.ActivateRequest(**{**base, field: value}), metadata=bearer(token), timeout=T),
                          INVALID_ARGUMENT)
        assert message.startswith("idempotency_key:") and field in message, message
    got = stack.entitlements.GetEntitlement(E.GetEntitlementRequest(organization_id=org.id, entitlement_id=entitlement), timeout=T)
    assert got.entitlement.lines[0].activated_licenses == 2


def test_the_audit_user_filter_ignores_case(stack, org_with_licenses):
    """"system", "SYSTEM" and "System" find the same events; so does a member's name in capitals."""
    org, _, _, token = org_with_licenses
    name = org.admin.display_name

    def total(user):
        return stack.portal.ListAuditEvents(G.ListAuditEventsRequest(user=user), metadata=bearer(token), timeout=T).total_size

    assert support.wait_until(lambda: total(name) > 0, timeout=30)
    assert support.wait_until(lambda: total("system") > 0, timeout=30)
    assert total("SYSTEM") == total("System") == total("system")
    assert total(name.upper()) == total(name.lower()) == total(name) > 0
    assert total("nobody at all") == 0


def test_equal_time_bounds_select_nothing(stack, org_with_licenses):
    _, _, _, token = org_with_licenses
    bound = Timestamp(seconds=int(time.time()))
    events = stack.portal.ListAuditEvents(G.ListAuditEventsRequest(time_start=bound, time_end=bound), metadata=bearer(token), timeout=T)
    activations = stack.portal.ListActivations(
        G.ListActivationsRequest(activation_date_start=bound, activation_date_end=bound), metadata=bearer(token), timeout=T)
    assert (len(events.events), events.total_size, len(activations.activations), activations.total_size) == (0, 0, 0, 0)


def edited(token: str) -> str:
    """The token with its payload's first byte changed, its signature left as it was."""
    payload, expiry, mac = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[-3] ^= 0x01
    return ".".join([base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("="), expiry, mac])


def test_page_tokens_are_signed_and_bound_to_their_list_filters_and_organization(stack, org_with_licenses):
    """An edited token, one used with other filters or another order, one from another organization
    and one from another list are INVALID_ARGUMENT naming page_token; the untouched token works."""
    org, product, entitlement, token = org_with_licenses
    for _ in range(3):
        stack.portal.Activate(G.ActivateRequest(
            entitlement_id=entitlement, product_id=product, quantity=1, project_name="Paged", project_manager="Pat",
            idempotency_key=uuid.uuid4().hex), metadata=bearer(token), timeout=T)
    first = stack.portal.ListActivations(G.ListActivationsRequest(page_size=1, search_text="paged"), metadata=bearer(token), timeout=T)
    next_token = first.next_page_token
    assert next_token.count(".") == 2
    works = stack.portal.ListActivations(G.ListActivationsRequest(page_size=1, search_text="paged", page_token=next_token),
                                         metadata=bearer(token), timeout=T)
    assert works.activations[0].activation_id != first.activations[0].activation_id

    other_org = stack.create_orgs(("Olga", "Other"))[0]
    other_token = stack.login(other_org.admin)
    for request, metadata, why in (
        (G.ListActivationsRequest(page_size=1, search_text="paged", page_token=edited(next_token)), bearer(token), "edited"),
        (G.ListActivationsRequest(page_size=1, search_text="apollo", page_token=next_token), bearer(token), "other filter"),
        (G.ListActivationsRequest(page_size=1, search_text="paged", order_by="activation_date asc", page_token=next_token), bearer(token),
         "other order"),
        (G.ListActivationsRequest(page_size=1, search_text="paged", page_token=next_token), bearer(other_token), "other organization"),
    ):
        message = refused(lambda: stack.portal.ListActivations(request, metadata=metadata, timeout=T), INVALID_ARGUMENT)
        assert message.startswith("page_token:"), f"{why}: {message!r}"
    message = refused(lambda: stack.portal.ListAuditEvents(G.ListAuditEventsRequest(page_token=next_token), metadata=bearer(token), timeout=T),
                      INVALID_ARGUMENT)
    assert message.startswith("page_token:"), message


# --------------------------------------------------------------------------------------------
# Caller metadata only from the gateway


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine outside 127.0.0.0/8, if it has one."""
    try:
        output = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for address in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", output):
        if not address.startswith("127."):
            return address
    return None


def test_a_backend_believes_caller_metadata_only_from_loopback_or_with_the_internal_credential(portal_bin, tmp_path):
    """A backend listening on every address, called from a non-loopback address: a call naming a
    member is PERMISSION_DENIED unless it carries the internal credential; a call naming no member
    is served."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to call from")
    credential = "c" * 40
    process = EveryAddressProcess([portal_bin, "identity", "--data-dir", str(tmp_path / "identity"), "--internal-credential", credential],
                                  "identity-trust", tmp_path / "logs")
    process.start()
    try:
        channel = grpc.insecure_channel(f"{address}:{process.port}")
        identity = P.identity_grpc.IdentityServiceStub(channel)
        # An organization that does not exist: a believed call reaches the handler and gets NOT_FOUND.
        request = I.CountMembersRequest(organization_id="org_missing")
        member = [("x-portal-member-id", "mem_x"), ("x-portal-display-name", "Mallory")]
        message = refused(lambda: identity.CountMembers(request, metadata=member, timeout=T), PERMISSION_DENIED)
        assert message.startswith("x-portal-member-id: caller metadata is accepted only from the gateway"), message
        refused(lambda: identity.CountMembers(request, metadata=member + [("x-portal-internal-credential", "wrong" * 8)], timeout=T),
                PERMISSION_DENIED)
        NOT_FOUND = grpc.StatusCode.NOT_FOUND
        refused(lambda: identity.CountMembers(request, metadata=member + [("x-portal-internal-credential", credential)], timeout=T), NOT_FOUND)
        refused(lambda: identity.CountMembers(request, timeout=T), NOT_FOUND)
        loopback_channel = support.make_channel(process.port)
        loopback = P.identity_grpc.IdentityServiceStub(loopback_channel)
        refused(lambda: loopback.CountMembers(request, metadata=member, timeout=T), NOT_FOUND)
        loopback_channel.close()
        channel.close()
    finally:
        support.stop_all([process])


class EveryAddressProcess(support.ServerProcess):
    """A server listening on every address (0.0.0.0) rather than loopback only."""

    @property
    def command(self) -> list[str]:
        return [*self.argv, *support.database_arguments(self.argv), "--host", "0.0.0.0", "--port", str(self.port)]


# --------------------------------------------------------------------------------------------
# Startup fails cleanly


def run_to_exit(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_port_in_use_ends_the_service_in_one_line_naming_it(portal_bin, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit([portal_bin, "audit", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "audit"),
                              *support.database_arguments([portal_bin, "audit"])])
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"audit: cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr, result.stderr[-2000:]


@pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")
def test_portal_dev_with_a_port_in_use_stops_before_seeding(portal_bin, tmp_path):
    """`portal dev --port-base B` with B + 2 (identity) taken exits 1 naming identity and the port,
    and leaves no demo organization behind."""
    base = support.free_port_base()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 2))
        taken.listen()
        result = run_to_exit([portal_bin, "dev", "--port-base", str(base), "--data-dir", str(tmp_path / "data")], timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"identity: cannot listen on 127.0.0.1:{base + 2}: address already in use" in result.stderr, result.stderr[-2000:]
    assert "SQLiteConnection was not closed" not in result.stderr
    assert not (tmp_path / "data" / "demo-organization.txt").exists()


@pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")
def test_portal_dev_moves_every_port_with_its_base(portal_bin, tmp_path):
    base = support.free_port_base()
    process = subprocess.Popen([portal_bin, "dev", "--no-demo", "--port-base", str(base), "--data-dir", str(tmp_path / "data")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        for offset in range(4):
            channel = support.make_channel(base + offset)
            assert support.wait_until(lambda: _serving(channel), timeout=30), f"nothing serving on {base + offset}"
            channel.close()
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{base + 1000}/healthz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{base + 4}/", timeout=5) as response:
            assert response.status == 200 and b"End Customer Portal" in response.read(), "the web portal follows the base"
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def _serving(channel) -> bool:
    try:
        return support.health_check(channel, timeout=1).status == 1
    except grpc.RpcError:
        return False


def test_an_unreadable_certificate_ends_the_service_naming_the_file(portal_bin, tmp_path):
    missing = tmp_path / "missing.crt"
    result = run_to_exit([portal_bin, "gateway", "--host", "127.0.0.1", "--port", str(support.free_port()), "--data-dir", str(tmp_path / "g"),
                          "--tls-cert", str(missing), "--tls-key", str(tmp_path / "missing.key")])
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert lines and lines[0].startswith("Error: gateway: ") and str(missing) in lines[0], result.stderr[-2000:]
