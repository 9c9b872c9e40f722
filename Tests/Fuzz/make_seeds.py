#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into Tests/Fuzz/corpus/<target>/ (run with the test
venv's Python: it needs protobuf, grpcio-tools and h2). The seeds are committed; run this again when
the protos or the targets change."""

from __future__ import annotations

import json
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))

import h2.config  # noqa: E402
import h2.connection  # noqa: E402

import support  # noqa: E402

P = support.protos()
CORPUS = HERE / "corpus"


def write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def frame(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


def swift_message_types() -> list[str]:
    """The Swift names in ProtoFileRegistry.messageTypes, in order (the protobuf target's selector)."""
    text = (ROOT / "Sources/PortalAPI/Generated/ProtoFileRegistry.pb.swift").read_text()
    block = text[text.index("messageTypes: [any RPCMessage.Type] = [") :]
    return re.findall(r"^\s+([A-Za-z0-9_.]+)\.self,$", block[: block.index("\n    ]")], re.M)


def examples() -> dict[str, bytes]:
    G, I, E, A, echo = P.gateway, P.identity, P.entitlements, P.audit, P.echo
    from google.protobuf.timestamp_pb2 import Timestamp
    return {
        "Portal_Gateway_V1_ActivateRequest": G.ActivateRequest(
            entitlement_id="ENT-1", product_id="SKU-1", quantity=3, project_name="Apollo", project_manager="Grace Hopper",
            serial_number="SN-1", idempotency_key="key-1").SerializeToString(),
        "Portal_Gateway_V1_ListActivationsRequest": G.ListActivationsRequest(
            page_size=50, page_token="eyJ2IjoxfQ.1.abc", order_by="activation_date desc", product_ids=["SKU-1", "SKU-2"],
            activation_date_start=Timestamp(seconds=1_767_225_600), search_text="apollo").SerializeToString(),
        "Portal_Gateway_V1_UpdateMemberRequest": G.UpdateMemberRequest(member_id="mem_1", first_name="Ada", phone="",
                                                                       role=I.ROLE_ADMIN).SerializeToString(),
        "Portal_Gateway_V1_GetDashboardResponse": G.GetDashboardResponse(
            available_licenses=10, total_members=4, unavailable_sections=[G.DASHBOARD_SECTION_RECENT_EVENTS]).SerializeToString(),
        "Portal_Identity_V1_CreateInviteRequest": I.CreateInviteRequest(organization_id="org_1", email="ada@example.com",
                                                                        phone="+14155550100", role=I.ROLE_VIEWER).SerializeToString(),
        "Portal_Entitlements_V1_TransferEntitlementRequest": E.TransferEntitlementRequest(
            entitlement_id="ENT-1", organization_id="org_1", sales_order="SO-1", order_date=Timestamp(seconds=1_767_225_600),
            lines=[E.TransferLine(product_id="SKU-1", quantity=5)]).SerializeToString(),
        "Portal_Audit_V1_AppendEventsRequest": A.AppendEventsRequest(events=[A.NewEvent(
            event_id="ev_1", organization_id="org_1", event_type=A.EVENT_TYPE_MEMBERS, time=Timestamp(seconds=1_767_225_600),
            message="Ada invited grace@example.com", user="Ada Lovelace")]).SerializeToString(),
        "Portal_Testing_V1_AllKinds": echo.AllKinds(
            string_value="é", bytes_value=b"\x00\xff", repeated_int32=[1, -1], repeated_string=["a", ""],
            labels={"k": "v"}, maybe_string="maybe").SerializeToString(),
    }


def protobuf_seeds() -> None:
    names = swift_message_types()
    for name, data in examples().items():
        write("protobuf", name, bytes([names.index(name)]) + data)


def deframer_seeds() -> None:
    write("deframer", "two-messages", bytes([7]) + frame(b"hello") + frame(b""))
    write("deframer", "split-header", bytes([1]) + frame(b"x" * 40))
    write("deframer", "large", bytes([63]) + frame(bytes(range(256)) * 8))


def http2_seeds() -> None:
    def client(path: str, body: bytes, extra: list | None = None, end: bool = True) -> bytes:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                   ("content-type", "application/grpc"), ("te", "trailers"), *(extra or [])]
        conn.send_headers(1, headers)
        conn.send_data(1, body, end_stream=end)
        if not end:
            conn.reset_stream(1)
        conn.ping(b"12345678")
        return conn.data_to_send()

    request = P.echo.EchoRequest(message="hello", fail_with_code=3).SerializeToString()
    write("http2-server", "echo-get", bytes([255]) + client("/portal.testing.v1.Echo/Get", frame(request)))
    write("http2-server", "echo-get-small-pieces", bytes([2]) + client("/portal.testing.v1.Echo/Get", frame(request),
                                                                      [("grpc-timeout", "1S"), ("x-trace-bin", "AAEC")]))
    write("http2-server", "unknown-method-reset", bytes([40]) + client("/portal.testing.v1.Echo/Nope", frame(b""), end=False))


def page_token_seeds() -> None:
    write("page-token", "value-and-id", b"Acme Widget\x00act_0123456789abcdef")
    write("page-token", "shaped-like-a-token", b"eyJjIjoibmFtZSIsImQiOmZhbHNlLCJpIjoieCIsInYiOnsidGV4dCI6eyJfMCI6ImEifX19.1700086400000.c2lnbmF0dXJl")
    write("page-token", "empty-parts", b"..")


def csv_seeds() -> None:
    write("csv", "header-and-row", b"Date & Time\x00Message\x00Type\x00User\x0105 Mar 2026, 14:07:09\x00Ada invited \"Grace\", admin\x00Members\x00Ada")
    write("csv", "formulas-and-breaks", b"=SUM(A1)\x00+1\x00-2\x00@x\x00\tt\x00\rr\x01line\r\nbreak\x00\xc3\xa9\x00")


def protojson_seeds() -> None:
    """Seeds for the JSON codec: a type name, a newline, a mode byte (even JSON, odd binary, multiple
    of 4 query parameters) and the payload."""
    def seed(name: str, type_name: str, mode: int, payload: bytes) -> None:
        write("protojson", name, type_name.encode() + b"\n" + bytes([mode]) + payload)

    seed("login-json", "portal.gateway.v1.LoginRequest", 2, b'{"email":"ada@northwind.example","password":"secret","organizationId":"org_1"}')
    seed("all-kinds-json", "portal.testing.v1.AllKinds", 2, json.dumps({
        "int64Value": "-9223372036854775808", "uint64Value": "18446744073709551615", "doubleValue": "NaN",
        "floatValue": 1.5, "bytesValue": "AP8=", "stringValue": "\u00e9\n", "repeatedInt32": [1, -1], "labels": {"k": "v"},
        "maybeString": "", "boolValue": True}).encode())
    seed("timestamp-json", "portal.audit.v1.NewEvent", 2, b'{"time":"2026-01-01T10:00:00.123456789+01:00","eventType":"EVENT_TYPE_MEMBERS","message":"x"}')
    seed("any-json", "google.rpc.Status", 2, b'{"code":3,"details":[{"@type":"type.googleapis.com/google.protobuf.Timestamp","value":"1970-01-01T00:00:00Z"}]}')
    seed("all-kinds-binary", "portal.testing.v1.AllKinds", 1, examples()["Portal_Testing_V1_AllKinds"])
    seed("activations-query", "portal.gateway.v1.ExportActivationsCsvRequest", 4,
         b"productIds=SKU-1&productIds=SKU-2&activationDateStart=2026-01-01T00:00:00Z&timeZone=Europe/Berlin")


if __name__ == "__main__":
    protobuf_seeds()
    protojson_seeds()
    deframer_seeds()
    http2_seeds()
    page_token_seeds()
    csv_seeds()
    print("seeds written under", CORPUS)
