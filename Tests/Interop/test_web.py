"""The gateway's web listener from an independent client: plain HTTP from Python (http.client), the
Connect protocol's JSON and stream envelopes parsed here. Every PortalService RPC runs through the
gateway's authorisation matrix over Connect; sessions live in cookies; cross-site and malformed
requests are refused; the embedded portal is served with its security headers; CSV downloads equal
the gRPC exports, and a slow reader of a large download holds the server's memory down.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import struct
import time
import urllib.parse

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

import support
import test_gateway
from test_gateway import (  # noqa: F401  (fixtures and the matrix, run here over Connect)
    CALLERS, LIVE_RPCS, RPCS, SCENARIOS, STREAMING_RPCS, Cell, G, I, A, T, expected_code, outcome, unique, world,
)

CONNECT_CODES = {
    "canceled": grpc.StatusCode.CANCELLED, "unknown": grpc.StatusCode.UNKNOWN,
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT, "deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
    "not_found": grpc.StatusCode.NOT_FOUND, "already_exists": grpc.StatusCode.ALREADY_EXISTS,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED, "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION, "aborted": grpc.StatusCode.ABORTED,
    "out_of_range": grpc.StatusCode.OUT_OF_RANGE, "unimplemented": grpc.StatusCode.UNIMPLEMENTED,
    "internal": grpc.StatusCode.INTERNAL, "unavailable": grpc.StatusCode.UNAVAILABLE, "data_loss": grpc.StatusCode.DATA_LOSS,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
}
HTTP_STATUS = {
    "canceled": 499, "unknown": 500, "invalid_argument": 400, "deadline_exceeded": 504, "not_found": 404, "already_exists": 409,
    "permission_denied": 403, "resource_exhausted": 429, "failed_precondition": 400, "aborted": 409, "out_of_range": 400,
    "unimplemented": 501, "internal": 500, "unavailable": 503, "data_loss": 500, "unauthenticated": 401,
}
SERVICE = "/portal.gateway.v1.PortalService/"
COOKIE = "__Host-portal-session"
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options")


class Response:
    """One HTTP response: status, headers (lower-case names, every value) and body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status, self.body = status, body
        self.headers = [(name.lower(), value) for name, value in headers]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def json(self):
        return json.loads(self.body)

    def cookie(self) -> tuple[str, dict[str, str]] | None:
        """The session cookie's value and attributes (lower-case names), when this response sets it."""
        for value in self.all("set-cookie"):
            name, _, rest = value.partition("=")
            if name == COOKIE:
                token, *attributes = [part.strip() for part in rest.split(";")]
                pairs = dict((a.split("=", 1) + [""])[:2] for a in attributes)
                return token, {key.lower(): val for key, val in pairs.items()}
        return None


class Web:
    """A plain HTTP/1.1 client of the web listener."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 30) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            reply = connection.getresponse()
            return Response(reply.status, reply.getheaders(), reply.read())
        finally:
            connection.close()

    def unary(self, rpc: str, message: dict, headers: dict | None = None) -> Response:
        """A Connect unary call with a JSON body."""
        sent = {"Content-Type": "application/json", "Connect-Protocol-Version": "1", **(headers or {})}
        return self.request("POST", SERVICE + rpc, json.dumps(message).encode(), sent)

    def stream(self, rpc: str, message: dict, headers: dict | None = None) -> tuple[Response, list[dict], dict]:
        """A Connect server-streaming call: the response, its messages and its end-of-stream message."""
        payload = json.dumps(message).encode()
        sent = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1", **(headers or {})}
        response = self.request("POST", SERVICE + rpc, struct.pack(">BI", 0, len(payload)) + payload, sent)
        messages, end, data = [], None, response.body
        while data:
            flags, length = struct.unpack(">BI", data[:5])
            body, data = data[5:5 + length], data[5 + length:]
            assert len(body) == length, "a truncated envelope"
            if flags & 0x02:
                assert end is None and not data, "the end-of-stream message must be last"
                end = json.loads(body)
            else:
                assert end is None
                messages.append(json.loads(body))
        return response, messages, end


    def live_stream(self, rpc: str, message: dict, headers: dict | None = None) -> tuple[int, list[dict], dict | None]:
        """A Connect server-streaming call that never ends by itself, read envelope by envelope up to
        its first heartbeat (or its end-of-stream message): the HTTP status, messages and end, if any."""
        payload = json.dumps(message).encode()
        sent = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1", **(headers or {})}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", SERVICE + rpc, struct.pack(">BI", 0, len(payload)) + payload, sent)
            reply = connection.getresponse()
            messages = []
            while True:
                prefix = reply.read(5)
                if len(prefix) < 5:
                    return reply.status, messages, None
                flags, length = struct.unpack(">BI", prefix)
                body = json.loads(reply.read(length))
                if flags & 0x02:
                    return reply.status, messages, body
                messages.append(body)
                if body.get("heartbeat"):
                    return reply.status, messages, None
        finally:
            connection.close()


class ConnectError(grpc.RpcError):
    """A Connect error as the gateway tests read gRPC errors: code() and details()."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self._code, self._message = code, message

    def code(self):
        return self._code

    def details(self):
        return self._message


def connect_error(error: dict, http_status: int | None) -> ConnectError:
    """Checks a Connect error body (and, for unary calls, its HTTP status) and turns it into a ConnectError."""
    assert error["code"] in CONNECT_CODES, error
    if http_status is not None:
        assert http_status == HTTP_STATUS[error["code"]], f"{error['code']} came with HTTP {http_status}"
    return ConnectError(CONNECT_CODES[error["code"]], error.get("message", ""))


class WebStack(test_gateway.Stack):
    """The gateway stack with a web listener; `call` goes over Connect JSON with bearer metadata."""

    def start_gateway(self, name: str, audit_address: str, entitlements_address: str | None = None) -> support.ServerProcess:
        self.web_port = support.free_port()
        return self.launch(
            "gateway", f"{name}-data", "--identity-address", self.identity_server.address,
            "--entitlements-address", entitlements_address or self.entitlements_server.address,
            "--audit-address", audit_address, "--web-port", str(self.web_port))

    @property
    def web(self) -> Web:
        return Web(self.web_port)

    def call(self, rpc: str, request, metadata=(), timeout: float = T):
        headers = {name: value for name, value in metadata}
        body = json_format.MessageToDict(request)
        if rpc in LIVE_RPCS:
            status, messages, end = self.web.live_stream(rpc, body, headers)
            assert status == 200, status
            if end and end.get("error"):
                raise connect_error(end["error"], None)
            return [json_format.ParseDict(m, getattr(G, f"{rpc}Response")()) for m in messages]
        if rpc in STREAMING_RPCS:
            response, messages, end = self.web.stream(rpc, body, headers)
            assert response.status == 200, response.body
            if end.get("error"):
                raise connect_error(end["error"], None)
            return b"".join(json_format.ParseDict(m, getattr(G, f"{rpc}Response")()).chunk
                            for m in messages).decode("utf-8")
        response = self.web.unary(rpc, body, headers)
        assert response.header("cache-control") == "no-store", rpc
        assert response.header("content-type") == "application/json", rpc
        if response.status != 200:
            raise connect_error(response.json(), response.status)
        message = json_format.ParseDict(response.json(), getattr(G, f"{rpc}Response")())
        if rpc in ("Login", "AcceptInvite"):
            # The web listener keeps the session out of the body: it travels in the cookie.
            assert not message.session_token, f"{rpc} leaked the session token into the JSON body"
            cookie = response.cookie()
            assert cookie, f"{rpc} set no session cookie"
            message.session_token = cookie[0]
        return message


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory):
    """Audit, identity, entitlements and a gateway with a web listener, once for the module."""
    stack = WebStack(portal_bin, tmp_path_factory.mktemp("web-stack"))
    try:
        yield stack.start()
    finally:
        stack.stop()


# --------------------------------------------------------------------------------------------
# Every RPC over Connect JSON: the gateway's authorisation matrix, unchanged


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rpc", RPCS)
def test_authorisation_matrix_over_connect(world, rpc, caller):
    """Each RPC × caller gets, over Connect JSON, the status (and HTTP status) the role table gives;
    OK responses carry the caller's own data, and refused calls change nothing."""
    scenario = SCENARIOS[rpc]
    cell = Cell(world, rpc, caller, world.metadata(caller, fresh=(rpc == "Logout")))
    cell.request = scenario.build(cell)
    before = scenario.state(cell) if scenario.state else None
    code, result = outcome(lambda: world.stack.call(rpc, cell.request, cell.metadata))
    expected = expected_code(rpc, caller)
    detail = result.details() if code != grpc.StatusCode.OK else ""
    assert code == expected, f"{rpc} as {caller}: expected {expected.name}, got {code.name} {detail!r}"
    if code == grpc.StatusCode.OK:
        scenario.check(cell, result)
    elif scenario.state:
        assert scenario.state(cell) == before, f"{rpc} as {caller} was refused with {code.name} but changed state"


def test_json_responses_equal_the_grpc_responses(world):
    """Read methods answer the same over Connect JSON as over gRPC, field for field."""
    stack, token = world.stack, world.tokens["admin_a"]
    for rpc, request in [("WhoAmI", G.WhoAmIRequest()), ("ListProducts", G.ListProductsRequest(page_size=50)),
                         ("GetEntitlement", G.GetEntitlementRequest(entitlement_id=world.entitlement_a)),
                         ("ListMembers", G.ListMembersRequest(page_size=50))]:
        over_grpc = json_format.MessageToDict(getattr(stack.portal, rpc)(request, metadata=[("authorization", f"Bearer {token}")], timeout=T))
        response = stack.web.unary(rpc, json_format.MessageToDict(request), {"Authorization": f"Bearer {token}"})
        assert response.status == 200 and response.json() == over_grpc, rpc


# --------------------------------------------------------------------------------------------
# Cookie sessions


def sign_in(web: Web, account) -> tuple[Response, str]:
    response = web.unary("Login", {"organizationId": account.organization_id, "email": account.email, "password": account.password})
    assert response.status == 200, response.body
    cookie = response.cookie()
    assert cookie, response.headers
    return response, cookie[0]


def test_login_sets_a_host_only_secure_http_only_strict_cookie_and_logout_clears_it(world):
    web, viewer = world.stack.web, world.viewer_a
    response, token = sign_in(web, viewer)
    _, attributes = response.cookie()
    assert {"secure", "httponly", "path", "samesite", "max-age"} <= set(attributes), attributes
    assert attributes["path"] == "/" and attributes["samesite"] == "Strict" and "domain" not in attributes
    assert 3600 <= int(attributes["max-age"]) <= 86400
    body = response.json()
    assert "sessionToken" not in body and body["principal"]["memberId"] == viewer.member_id

    me = web.unary("WhoAmI", {}, {"Cookie": f"{COOKIE}={token}"})
    assert me.status == 200 and me.json()["principal"]["memberId"] == viewer.member_id
    assert web.unary("WhoAmI", {}).status == 401

    out = web.unary("Logout", {}, {"Cookie": f"{COOKIE}={token}"})
    assert out.status == 200
    cleared, attributes = out.cookie()
    assert cleared == "" and attributes["max-age"] == "0"
    after = web.unary("WhoAmI", {}, {"Cookie": f"{COOKIE}={token}"})
    assert after.status == 401 and after.json()["code"] == "unauthenticated"
    again = web.unary("Logout", {}, {"Cookie": f"{COOKIE}={token}"})
    assert again.status == 401 and again.cookie() == ("", again.cookie()[1]), "a stale cookie is cleared too"


def test_signing_in_again_ends_the_session_the_old_cookie_held(world):
    """Switching organization (or signing in again) replaces the cookie; the replaced session stops working
    at once instead of staying valid, unseen, until it expires. A failed sign-in keeps the old one."""
    web, viewer = world.stack.web, world.viewer_a
    _, first = sign_in(web, viewer)
    wrong = web.unary("Login", {"organizationId": viewer.organization_id, "email": viewer.email, "password": "not the password"},
                      {"Cookie": f"{COOKIE}={first}"})
    assert wrong.status == 401 and not wrong.cookie()
    assert web.unary("WhoAmI", {}, {"Cookie": f"{COOKIE}={first}"}).status == 200, "a failed sign-in ends nothing"

    again = web.unary("Login", {"organizationId": viewer.organization_id, "email": viewer.email, "password": viewer.password},
                      {"Cookie": f"{COOKIE}={first}"})
    assert again.status == 200
    second = again.cookie()[0]
    assert second and second != first
    assert web.unary("WhoAmI", {}, {"Cookie": f"{COOKIE}={second}"}).status == 200
    replaced = web.unary("WhoAmI", {}, {"Cookie": f"{COOKIE}={first}"})
    assert replaced.status == 401 and replaced.json()["code"] == "unauthenticated"


def test_api_clients_keep_bearer_tokens(world):
    """A bearer header wins over the cookie, and a gRPC session works over the web listener too."""
    web = world.stack.web
    response = web.unary("WhoAmI", {}, {"Authorization": f"Bearer {world.tokens['admin_b']}", "Cookie": f"{COOKIE}=not-a-session"})
    assert response.status == 200 and response.json()["principal"]["organizationId"] == world.org_b.id


# --------------------------------------------------------------------------------------------
# GET for methods without side effects, deadlines, errors


def connect_get(web: Web, rpc: str, message: dict, headers: dict | None = None, base64: bool = False) -> Response:
    text = json.dumps(message)
    value = __import__("base64").urlsafe_b64encode(text.encode()).decode().rstrip("=") if base64 else text
    query = urllib.parse.urlencode({"connect": "v1", "encoding": "json", "message": value, **({"base64": "1"} if base64 else {})})
    return web.request("GET", f"{SERVICE}{rpc}?{query}", headers=headers)


def test_get_serves_methods_without_side_effects_only(world):
    web, token = world.stack.web, world.tokens["admin_a"]
    auth = {"Authorization": f"Bearer {token}"}
    posted = web.unary("GetProduct", {"productId": world.product_a}, auth)
    for base64 in (False, True):
        got = connect_get(web, "GetProduct", {"productId": world.product_a}, auth, base64=base64)
        assert got.status == 200 and got.json() == posted.json()
        assert got.header("cache-control") == "no-store"
    refused = connect_get(web, "Activate", {"entitlementId": world.entitlement_a, "productId": world.product_a, "quantity": 1}, auth)
    assert refused.status == 501 and "POST" in refused.json()["message"]
    assert connect_get(web, "GetProduct", {"productId": world.product_a}, auth).status == 200
    missing = web.request("GET", f"{SERVICE}WhoAmI?encoding=json&message=%7B%7D", headers=auth)
    assert missing.status == 400 and missing.json()["message"].startswith("connect:")


def test_errors_name_the_field_and_use_connects_http_statuses(world):
    web, auth = world.stack.web, {"Authorization": f"Bearer {world.tokens['admin_a']}"}
    unknown_field = web.unary("GetProduct", {"productId": world.product_a, "colour": "red"}, auth)
    assert unknown_field.status == 400 and "colour" in unknown_field.json()["message"]
    wrong_type = web.unary("ListProducts", {"pageSize": "many"}, auth)
    assert wrong_type.status == 400 and "pageSize" in wrong_type.json()["message"]
    too_long = web.unary("GetProduct", {"productId": "x" * 200}, auth)
    assert too_long.status == 400 and "product_id" in too_long.json()["message"]
    not_found = web.unary("GetProduct", {"productId": "SKU-nothing"}, auth)
    assert not_found.status == 404 and not_found.json()["code"] == "not_found"
    not_json = web.request("POST", SERVICE + "WhoAmI", b"{", {"Content-Type": "application/json", "Connect-Protocol-Version": "1", **auth})
    assert not_json.status == 400 and not_json.json()["code"] == "invalid_argument"
    unknown_method = web.unary("Nope", {}, auth)
    assert unknown_method.status in (404, 501)


def test_a_deadline_ends_the_call_with_deadline_exceeded(world, tmp_path):
    """A gateway whose entitlements service never answers: Connect-Timeout-Ms ends the call on time."""
    stack = world.stack
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        gateway = stack.launch(
            "gateway", f"silent-{unique()}", "--identity-address", stack.identity_server.address,
            "--entitlements-address", f"127.0.0.1:{silent.getsockname()[1]}", "--audit-address", stack.audit_server.address,
            "--web-port", str(port := support.free_port()))
        web = Web(port)
        started = time.monotonic()
        response = web.unary("ListProducts", {}, {"Authorization": f"Bearer {world.tokens['admin_a']}", "Connect-Timeout-Ms": "700"})
        elapsed = time.monotonic() - started
        assert response.status == 504 and response.json()["code"] == "deadline_exceeded", response.body
        assert 0.6 <= elapsed < 5, elapsed
        bad = web.unary("WhoAmI", {}, {"Connect-Timeout-Ms": "soon"})
        assert bad.status == 400 and "connect-timeout-ms" in bad.json()["message"]
        gateway.stop()
    finally:
        silent.close()


# --------------------------------------------------------------------------------------------
# Browser security


def test_cross_site_and_malformed_requests_are_refused(world):
    web, token = world.stack.web, world.tokens["admin_a"]
    cookie = {"Cookie": f"{COOKIE}={token}"}
    cross = web.unary("WhoAmI", {}, {**cookie, "Sec-Fetch-Site": "cross-site"})
    assert cross.status == 403 and cross.json()["code"] == "permission_denied"
    assert web.unary("WhoAmI", {}, {**cookie, "Sec-Fetch-Site": "same-site"}).status == 403
    assert web.unary("WhoAmI", {}, {**cookie, "Sec-Fetch-Site": "same-origin"}).status == 200
    host = f"127.0.0.1:{web.port}"
    assert web.unary("WhoAmI", {}, {**cookie, "Origin": "https://evil.example"}).status == 403
    assert web.unary("WhoAmI", {}, {**cookie, "Origin": f"http://{host}"}).status == 200
    assert web.unary("WhoAmI", {}, {**cookie, "Origin": "null"}).status == 403
    # A form post or a "simple" fetch from another site can send neither the header nor JSON.
    no_header = web.request("POST", SERVICE + "WhoAmI", b"{}", {"Content-Type": "application/json", **cookie})
    assert no_header.status == 400 and "connect-protocol-version" in no_header.json()["message"]
    as_form = web.request("POST", SERVICE + "WhoAmI", b"a=b", {"Content-Type": "application/x-www-form-urlencoded",
                                                                 "Connect-Protocol-Version": "1", **cookie})
    assert as_form.status == 400 and "content-type" in as_form.json()["message"]
    # A link from another site (an invite mail in a webmail) opens a page, never the API or a download.
    navigate = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    assert web.request("GET", "/accept-invite?code=abc", headers=navigate).status == 200
    assert web.request("GET", f"{SERVICE}WhoAmI?connect=v1&encoding=json&message=%7B%7D", headers={**navigate, **cookie}).status == 403
    assert web.request("GET", "/exports/activations.csv", headers={**navigate, **cookie}).status == 403
    assert web.request("GET", "/portal.js", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors",
                                                    "Sec-Fetch-Dest": "script"}).status == 403
    preflight = web.request("OPTIONS", SERVICE + "WhoAmI", headers={"Origin": "https://evil.example",
                                                                    "Access-Control-Request-Method": "POST"})
    assert preflight.status in (403, 405)
    for response in (cross, no_header, preflight):
        assert not [name for name, _ in response.headers if name.startswith("access-control-")], response.headers


def test_every_response_carries_the_security_headers(world):
    web = world.stack.web
    for response in (web.request("GET", "/"), web.unary("WhoAmI", {}), web.request("GET", "/missing.js"),
                     web.request("GET", "/exports/activations.csv")):
        for name in SECURITY_HEADERS:
            assert response.header(name), f"{name} missing on a {response.status} response"
        policy = response.header("content-security-policy")
        for directive in ("script-src 'self'", "require-trusted-types-for 'script'", "frame-ancestors 'none'"):
            assert directive in policy, policy
        assert "unsafe-inline" not in policy
        assert response.header("strict-transport-security") is None, "HSTS only over TLS"


def test_oversized_bodies_and_heads_are_refused(world):
    web = world.stack.web
    big = web.request("POST", SERVICE + "Login", b"{" + b" " * (5 << 20) + b"}",
                      {"Content-Type": "application/json", "Connect-Protocol-Version": "1"})
    assert big.status == 413
    huge_header = web.request("GET", "/", headers={"X-Padding": "a" * (20 << 10)})
    assert huge_header.status in (431, 400)
    assert web.request("GET", "/").status == 200, "the listener serves on after refusing"


# --------------------------------------------------------------------------------------------
# Static files


def test_the_embedded_portal_is_served_with_types_etags_and_a_route_fallback(world):
    web = world.stack.web
    index = web.request("GET", "/")
    assert index.status == 200 and index.header("content-type") == "text/html; charset=utf-8"
    assert b"<script type=\"module\" src=\"/portal.js\">" in index.body
    etag = index.header("etag")
    assert etag and index.header("cache-control") == "no-cache"
    assert web.request("GET", "/", headers={"If-None-Match": etag}).status == 304
    script = web.request("GET", "/portal.js")
    assert script.status == 200 and script.header("content-type") == "text/javascript; charset=utf-8"
    assert web.request("GET", "/portal.css").header("content-type") == "text/css; charset=utf-8"
    route = web.request("GET", "/licensing/products")
    assert route.status == 200 and route.body == index.body, "client-side routes get index.html"
    assert web.request("GET", "/missing.js").status == 404
    head = web.request("HEAD", "/portal.js")
    assert head.status == 200 and head.body == b"" and int(head.header("content-length")) == len(script.body)
    assert web.request("DELETE", "/").status == 405


def test_site_dir_serves_the_folder_as_it_is_at_each_request_and_nothing_outside_it(portal_bin, start_server, tmp_path):
    """`--site-dir`: the portal's files come from a folder, read at each request (a change shows
    without a restart), with the embedded copy's content types, ETags and route fallback; `..`,
    hidden names, symbolic links leading out of the folder and anything but a regular file are 404."""
    site, outside = tmp_path / "site", tmp_path / "outside"
    (site / "app").mkdir(parents=True)
    outside.mkdir()
    (site / "index.html").write_text("<!doctype html><title>first</title>")
    (site / "app" / "main.js").write_text("export const version = 1;\n")
    (site / "portal.css").write_text("body { margin: 0; }\n")
    (site / ".env").write_text("SECRET=hidden\n")
    (outside / "secret.txt").write_text("not for browsers\n")
    (site / "escape").symlink_to(outside, target_is_directory=True)
    (site / "secret.txt").symlink_to(outside / "secret.txt")
    (site / "passwd").symlink_to("/etc/passwd")
    (site / "linked.js").symlink_to(site / "app" / "main.js")
    os.mkfifo(site / "pipe.js")
    web_port = support.free_port()
    unreachable = f"127.0.0.1:{support.free_port()}"
    gateway = start_server([portal_bin, "gateway", "--data-dir", str(tmp_path / "gateway-data"), "--web-port", str(web_port),
                            "--site-dir", str(site), "--identity-address", unreachable, "--entitlements-address", unreachable,
                            "--audit-address", unreachable], "site-dir-gateway")
    web = Web(web_port)

    script = web.request("GET", "/app/main.js")
    assert script.status == 200 and script.body == b"export const version = 1;\n"
    assert script.header("content-type") == "text/javascript; charset=utf-8" and script.header("cache-control") == "no-cache"
    etag = script.header("etag")
    assert etag == '"' + hashlib.sha256(script.body).hexdigest()[:20] + '"', "the embedded copy's validator"
    assert web.request("GET", "/app/main.js", headers={"If-None-Match": etag}).status == 304
    assert web.request("GET", "/portal.css").header("content-type") == "text/css; charset=utf-8"
    assert web.request("GET", "/linked.js").body == script.body, "a link inside the folder is followed"

    (site / "app" / "main.js").write_text("export const version = 2;\n")
    changed = web.request("GET", "/app/main.js", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.body == b"export const version = 2;\n" and changed.header("etag") != etag
    (site / "index.html").write_text("<!doctype html><title>second</title>")
    for path in ("/", "/index.html", "/licensing/products", "/accept-invite?code=abc", "/app"):
        page = web.request("GET", path)
        assert page.status == 200 and page.body == b"<!doctype html><title>second</title>", path
        assert page.header("content-type") == "text/html; charset=utf-8", path
    assert web.request("GET", "/missing.js").status == 404

    for path in ("/../etc/passwd", "/app/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/app/..%2f..%2f..%2fetc%2fpasswd",
                 "/./index.html", "/.env", "/escape/secret.txt", "/escape", "/secret.txt", "/passwd", "/pipe.js", "/index.html%00.js"):
        refused = web.request("GET", path, timeout=5)
        assert refused.status == 404, f"{path} answered {refused.status}"
        assert b"not for browsers" not in refused.body and b"root:" not in refused.body and b"SECRET" not in refused.body, path
    gateway.assert_running("after the refused paths")
    assert "served from disk" in gateway.stderr_text(), "the gateway warns that it serves the portal from disk"


# --------------------------------------------------------------------------------------------
# CSV downloads


def test_csv_downloads_equal_the_grpc_exports_with_the_same_filters(world):
    stack, token = world.stack, world.tokens["admin_a"]
    web = stack.web
    _, cookie = sign_in(web, world.org_a.admin)
    for path, rpc, request, query in [
        ("/exports/activations.csv", "ExportActivationsCsv", G.ExportActivationsCsvRequest(product_ids=[world.product_a]),
         {"productIds": world.product_a}),
        ("/exports/audit-events.csv", "ExportAuditEventsCsv", G.ExportAuditEventsCsvRequest(time_zone="Europe/Berlin"),
         {"timeZone": "Europe/Berlin"}),
    ]:
        expected = b"".join(piece.chunk for piece in getattr(stack.portal, rpc)(
            request, metadata=[("authorization", f"Bearer {token}")], timeout=T))
        response = web.request("GET", f"{path}?{urllib.parse.urlencode(query)}", headers={"Cookie": f"{COOKIE}={cookie}",
                                                                                        "Sec-Fetch-Site": "same-origin"})
        assert response.status == 200, response.body
        assert response.header("content-type") == "text/csv; charset=utf-8"
        assert response.header("content-disposition").startswith("attachment; filename=")
        assert response.body == expected, path
    viewer = web.request("GET", "/exports/activations.csv", headers={"Cookie": f"{COOKIE}={world.tokens['viewer_a']}"})
    assert viewer.status == 403 and viewer.json()["code"] == "permission_denied"
    bad = web.request("GET", "/exports/activations.csv?colour=red", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert bad.status == 400 and "colour" in bad.json()["message"]


def test_the_streaming_export_over_connect_ends_with_an_end_of_stream_message(world):
    web, token = world.stack.web, world.tokens["admin_a"]
    response, messages, end = web.stream("ExportActivationsCsv", {}, {"Authorization": f"Bearer {token}"})
    assert response.status == 200 and response.header("content-type") == "application/connect+json"
    assert messages and end == {}
    refused, messages, end = web.stream("ExportActivationsCsv", {}, {"Authorization": f"Bearer {world.tokens['viewer_a']}"})
    assert refused.status == 200 and messages == [] and end["error"]["code"] == "permission_denied"


@pytest.fixture(scope="module")
def large_log(world):
    """An organization with 200,000 audit events (about 17 MiB of CSV); yields (event count, session token)."""
    stack = world.stack
    org = stack.create_orgs(("Sloane", "Slow"))[0]
    events, batch = 200_000, 1_000
    for first in range(0, events, batch):
        stack.audit.AppendEvents(A.AppendEventsRequest(events=[
            A.NewEvent(event_id=f"{org.id}-{i}", organization_id=org.id, time=Timestamp(seconds=1_767_225_600 + i),
                       event_type=1 + i % 3, action=1, message=f"event number {i} of the slow download test",
                       user="Sloane Slow") for i in range(first, first + batch)]), timeout=120)
    return events, stack.login(org.admin)


def test_a_slow_reader_of_a_large_download_keeps_the_gateway_small(world, large_log):
    """Over HTTP/1.1, read at a crawl: the gateway's memory stays bounded because each chunk waits for
    the socket, and the download, read to its end, is whole."""
    events, token = large_log
    gateway = world.stack.gateway_server
    before = support.read_rss_bytes(gateway.pid)
    sock = socket.create_connection(("127.0.0.1", world.stack.web_port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
    sock.sendall((f"GET /exports/audit-events.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {COOKIE}={token}\r\n"
                  "Connection: close\r\n\r\n").encode())
    received, peak = bytearray(), before
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        chunk = sock.recv(1024)
        assert chunk, "the download ended early"
        received += chunk
        peak = max(peak, support.read_rss_bytes(gateway.pid))
        time.sleep(0.02)
    slow_part = len(received)
    sock.settimeout(60)
    while chunk := sock.recv(1 << 16):
        received += chunk
    sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    text = dechunk(body).decode()
    assert text.count("\n") >= events, "the whole export arrived"
    assert slow_part < len(received) // 4, "the reader was slow for most of the download"
    print(f"HTTP/1.1: gateway RSS grew by {(peak - before) / 2**20:.1f} MiB during a slow download of {len(text) / 2**20:.1f} MiB")
    assert peak - before < 48 << 20, f"the gateway grew by {(peak - before) >> 20} MiB while a reader was slow"


def test_a_reader_granting_no_http2_window_keeps_the_gateway_small(world, large_log):
    """Over HTTP/2 (h2c), a client that grants no flow-control window for 3 s: the gateway holds the
    export back; once the client reads, the whole file arrives."""
    events, token = large_log
    gateway = world.stack.gateway_server
    with support.RawH2Client(world.stack.web_port, auto_ack=False) as client:
        client.drain(0.2)
        before = support.read_rss_bytes(gateway.pid)
        stream = client.request([(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"),
                                 (":path", "/exports/audit-events.csv"), ("cookie", f"{COOKIE}={token}")], plain=True)
        peak, stop = before, time.monotonic() + 3
        while time.monotonic() < stop:
            client.read_some(timeout=0.05)
            peak = max(peak, support.read_rss_bytes(gateway.pid))
        held_back = len(client.streams[stream].body)
        client.auto_ack = True
        client.conn.increment_flow_control_window(64 << 20)
        client.conn.increment_flow_control_window(64 << 20, stream_id=stream)
        client.flush()
        result = client.wait_for(stream, timeout=120)
    assert result.http_status == 200 and result.ended, result.describe()
    assert held_back <= 1 << 20, f"{held_back} bytes arrived without a window"
    assert bytes(result.body).decode().count("\n") >= events
    print(f"HTTP/2: gateway RSS grew by {(peak - before) / 2**20:.1f} MiB while the client granted no window")
    assert peak - before < 48 << 20


def dechunk(body: bytes) -> bytes:
    out, rest = bytearray(), body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        rest = rest[size + 2:]


def test_failed_sign_ins_from_one_client_do_not_lock_out_another(world):
    """Identity limits failed sign-ins per client address, as the gateway saw it: a client guessing
    passwords from 127.0.0.2 runs out of attempts, and a person signing in from 127.0.0.3 through the
    same gateway is not held back by it."""
    def login(source: str, email: str, password: str) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", world.stack.web_port, timeout=30, source_address=(source, 0))
        try:
            body = json.dumps({"email": email, "password": password}).encode()
            connection.request("POST", SERVICE + "Login", body, {"Content-Type": "application/json", "Connect-Protocol-Version": "1"})
            reply = connection.getresponse()
            return Response(reply.status, reply.getheaders(), reply.read())
        finally:
            connection.close()

    statuses = [login("127.0.0.2", f"guess.{unique()}@example.com", "not-the-password").status for _ in range(14)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    viewer = world.viewer_a
    person = login("127.0.0.3", viewer.email, viewer.password)
    assert person.status == 200 and person.cookie(), person.body
