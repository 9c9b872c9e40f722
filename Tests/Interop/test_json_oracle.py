"""The portal's proto3 JSON codec against Python protobuf's `json_format`, for every embedded message type.

`portal-json-oracle` (env PORTAL_JSON_ORACLE_BIN, or next to PORTAL_BIN) converts with the codec built from the
embedded descriptors. For every message type of every file in `proto/` (nested types included) the tests build
randomized, fully populated messages from a fixed seed and check:

- binary -> our JSON equals `json_format.MessageToDict`, and parses back (in Python) to the same message;
- `json_format.MessageToJson` (JSON names and proto names) -> our binary parses (in Python) to the same message;
- an unknown field, a bad enum name and a bad timestamp are refused with an error naming the field.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import select
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, json_format, message_factory

import support

SAMPLES_PER_TYPE = 6
MAX_DEPTH = 3
ORACLE_TIMEOUT = 30.0
WELL_KNOWN_FILES = ["google/protobuf/timestamp.proto", "google/protobuf/any.proto"]
PROTO_FILES = sorted(str(path.relative_to(support.PROTO_DIR)) for path in support.PROTO_DIR.rglob("*.proto"))


# --------------------------------------------------------------------------------------------
# The oracle process


class JSONOracle:
    """One `portal-json-oracle` process answering a request per line."""

    def __init__(self, path: str):
        self.process = subprocess.Popen(
            [path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )

    def ask(self, request: dict) -> dict:
        assert self.process.poll() is None, f"the oracle exited: {self.process.stderr.read()}"
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], ORACLE_TIMEOUT)
        assert ready, f"the oracle did not answer within {ORACLE_TIMEOUT} s: {request}"
        line = self.process.stdout.readline()
        assert line, f"the oracle closed its output: {self.process.stderr.read()}"
        return json.loads(line)

    def json_of(self, type_name: str, binary: bytes) -> dict:
        return self.ask({"type": type_name, "binary": base64.b64encode(binary).decode()})

    def binary_of(self, type_name: str, text: str) -> dict:
        return self.ask({"type": type_name, "json": text})

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _oracle_path() -> str:
    if os.environ.get("PORTAL_JSON_ORACLE_BIN"):
        return support.required_binary("PORTAL_JSON_ORACLE_BIN")
    if os.environ.get("PORTAL_BIN"):
        path = Path(os.environ["PORTAL_BIN"]).parent / "portal-json-oracle"
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"{path} (next to PORTAL_BIN) is not an executable file; build the portal-json-oracle product.", pytrace=False)
        return str(path)
    pytest.fail("Set PORTAL_JSON_ORACLE_BIN (or PORTAL_BIN, with portal-json-oracle beside it).", pytrace=False)


@pytest.fixture(scope="module")
def oracle():
    process = JSONOracle(_oracle_path())
    yield process
    process.close()


# --------------------------------------------------------------------------------------------
# Message classes for every proto file


class Schema:
    """Message classes for every file in proto/ and the well-known files they import."""

    def __init__(self):
        support.protos()  # generates the modules and registers their files in the default pool
        default = descriptor_pool.Default()
        self.files: dict[str, descriptor.FileDescriptor] = {}
        self.private_pool = descriptor_pool.DescriptorPool()
        leftover = []
        for name in PROTO_FILES + WELL_KNOWN_FILES:
            # The OTLP files are the portal's copy: the opentelemetry-proto package (the tracing tests'
            # collector) registers its own, complete one under the same names in the default pool.
            if name.startswith("opentelemetry/"):
                leftover.append(name)
                continue
            try:
                self.files[name] = default.FindFileByName(name)
            except KeyError:
                leftover.append(name)
        in_default_pool = set(self.files)
        if leftover:
            # Files support.protos() does not generate (grpcio-reflection registers its own copy of the v1alpha
            # reflection package in the default pool), loaded into a pool of their own.
            for proto in _descriptor_set(leftover).file:
                self.private_pool.Add(proto)
            for name in leftover:
                self.files[name] = self.private_pool.FindFileByName(name)
        # Types an Any may hold: json_format resolves type URLs in the default pool.
        self.packable = [
            d for name in sorted(in_default_pool) for d in self.messages_of(name) if not d.GetOptions().map_entry
        ]

    def messages_of(self, file_name: str) -> list[descriptor.Descriptor]:
        result = []

        def walk(message_descriptor):
            result.append(message_descriptor)
            for nested in message_descriptor.nested_types:
                walk(nested)

        for message_descriptor in self.files[file_name].message_types_by_name.values():
            walk(message_descriptor)
        return result

    def all_messages(self) -> list[descriptor.Descriptor]:
        return [m for name in self.files for m in self.messages_of(name)]

    @staticmethod
    def new(message_descriptor: descriptor.Descriptor):
        return message_factory.GetMessageClass(message_descriptor)()


def _descriptor_set(files: list[str]) -> descriptor_pb2.FileDescriptorSet:
    import grpc_tools
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory(prefix="portal-json-oracle-") as directory:
        out = Path(directory) / "set.pb"
        wkt_dir = Path(grpc_tools.__file__).parent / "_proto"
        args = ["grpc_tools.protoc", f"-I{support.PROTO_DIR}", f"-I{wkt_dir}", "--include_imports", f"--descriptor_set_out={out}", *files]
        assert protoc.main(args) == 0, f"grpc_tools.protoc failed: {' '.join(args)}"
        descriptor_set = descriptor_pb2.FileDescriptorSet()
        descriptor_set.ParseFromString(out.read_bytes())
    return descriptor_set


@pytest.fixture(scope="module")
def schema() -> Schema:
    return Schema()


# --------------------------------------------------------------------------------------------
# Randomized, fully populated messages

INT32 = [0, 1, -1, 7, 2**31 - 1, -(2**31), 123456]
INT64 = [0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1, -(2**40)]
UINT32 = [0, 1, 2**32 - 1, 2**31]
UINT64 = [0, 1, 2**64 - 1, 2**63, 2**53 + 1]
FLOATS = [0.0, -0.0, 0.1, 1.5, -2.25e10, 3.4028234663852886e38, 1.401298464324817e-45, 1e-10, math.nan, math.inf, -math.inf]
DOUBLES = [0.0, -0.0, 0.1, 5e-324, 1.7976931348623157e308, 1e16, 123456789.125, -1e-300, math.nan, math.inf, -math.inf]
STRINGS = [
    "", "plain", "Grüße, 世界 🎉", "ctrl \x00\x01\x08\x0c\x1f\x7f end", 'quote " backslash \\ slash /', "\u2028\u2029\ufeff",
    "tab\tnewline\nreturn\r", "x" * 300, "𝄞 supplementary",
]
TIMESTAMP_SECONDS = [0, -1, 1, 1_772_719_629, -62_135_596_800, 253_402_300_799, 951_782_400]

F = descriptor.FieldDescriptor
UNSIGNED_KINDS = {F.TYPE_UINT32, F.TYPE_FIXED32, F.TYPE_UINT64, F.TYPE_FIXED64}
INTEGER_KINDS = {
    F.TYPE_INT32: INT32, F.TYPE_SINT32: INT32, F.TYPE_SFIXED32: INT32,
    F.TYPE_INT64: INT64, F.TYPE_SINT64: INT64, F.TYPE_SFIXED64: INT64,
    F.TYPE_UINT32: UINT32, F.TYPE_FIXED32: UINT32, F.TYPE_UINT64: UINT64, F.TYPE_FIXED64: UINT64,
}


def _is_map(field) -> bool:
    return field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def _scalar(field, rng: random.Random):
    if field.type in INTEGER_KINDS:
        if rng.random() < 0.7:
            return rng.choice(INTEGER_KINDS[field.type])
        return rng.randint(0, 1000) * (1 if field.type in UNSIGNED_KINDS else rng.choice([1, -1]))
    if field.type == F.TYPE_FLOAT:
        return rng.choice(FLOATS) if rng.random() < 0.6 else rng.uniform(-1e6, 1e6)
    if field.type == F.TYPE_DOUBLE:
        return rng.choice(DOUBLES) if rng.random() < 0.6 else rng.uniform(-1e12, 1e12)
    if field.type == F.TYPE_BOOL:
        return rng.random() < 0.6
    if field.type == F.TYPE_STRING:
        return rng.choice(STRINGS) if rng.random() < 0.7 else "".join(chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0xD7FF)])) for _ in range(rng.randint(1, 12)))
    if field.type == F.TYPE_BYTES:
        return bytes(rng.randint(0, 255) for _ in range(rng.choice([0, 1, 2, 3, 4, 17])))
    if field.type == F.TYPE_ENUM:
        numbers = [value.number for value in field.enum_type.values]
        if not field.enum_type.is_closed:
            numbers += [1234, -7]
        return rng.choice(numbers)
    raise AssertionError(f"unexpected field type {field.type} of {field.full_name}")


def _map_key(field, rng: random.Random):
    if field.type == F.TYPE_STRING:
        return rng.choice(["", "k", "key with space", "ключ", "🎉", "a.b", '"q"']) + str(rng.randint(0, 9))
    return _scalar(field, rng)


def fill(message, rng: random.Random, schema: Schema, depth: int = 0) -> None:
    """Sets every field of `message` (one member per oneof, sometimes none) to random values, recursing to MAX_DEPTH."""
    message_descriptor = message.DESCRIPTOR
    if message_descriptor.full_name == "google.protobuf.Timestamp":
        message.seconds = rng.choice(TIMESTAMP_SECONDS) if rng.random() < 0.5 else rng.randint(-62_135_596_800, 253_402_300_799)
        message.nanos = rng.choice([0, rng.randint(0, 999) * 1_000_000, rng.randint(0, 999_999) * 1000, rng.randint(0, 999_999_999)])
        return
    if message_descriptor.full_name == "google.protobuf.Any":
        choice = rng.random()
        if choice < 0.1 or depth >= MAX_DEPTH:
            return  # an empty Any
        inner_descriptor = rng.choice(schema.packable)
        inner = Schema.new(inner_descriptor)
        fill(inner, rng, schema, depth + 1)
        message.Pack(inner)
        return
    chosen = {}
    for oneof in message_descriptor.oneofs:
        chosen[oneof.name] = rng.choice(list(oneof.fields)) if rng.random() < 0.85 else None
    for field in message_descriptor.fields:
        if field.containing_oneof is not None and chosen[field.containing_oneof.name] is not field:
            continue
        value = getattr(message, field.name)
        if _is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for _ in range(rng.randint(0, 3)):
                key = _map_key(key_field, rng)
                if value_field.type == F.TYPE_MESSAGE:
                    if depth < MAX_DEPTH:
                        fill(value[key], rng, schema, depth + 1)
                else:
                    value[key] = _scalar(value_field, rng)
        elif field.is_repeated:
            for _ in range(rng.randint(0, 3)):
                if field.type == F.TYPE_MESSAGE:
                    if depth < MAX_DEPTH:
                        fill(value.add(), rng, schema, depth + 1)
                else:
                    value.append(_scalar(field, rng))
        elif field.type == F.TYPE_MESSAGE:
            if depth < MAX_DEPTH or field.containing_oneof is not None:
                value.SetInParent()
                if depth < MAX_DEPTH:
                    fill(value, rng, schema, depth + 1)
        else:
            setattr(message, field.name, _scalar(field, rng))


def samples(message_descriptor, schema: Schema) -> list:
    """SAMPLES_PER_TYPE messages of this type, the same on every run."""
    rng = random.Random(zlib.crc32(message_descriptor.full_name.encode()))
    result = [Schema.new(message_descriptor)]
    for _ in range(SAMPLES_PER_TYPE - 1):
        message = Schema.new(message_descriptor)
        fill(message, rng, schema)
        result.append(message)
    return result


# --------------------------------------------------------------------------------------------
# Comparison


def same_json(ours, theirs, path: str = "") -> str | None:
    """Where two JSON values differ (None when equal); numbers that are one float32 count as equal, NaN equals NaN."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return f"{path or '<top>'}: keys {sorted(ours)} != {sorted(theirs)}"
        for key in ours:
            difference = same_json(ours[key], theirs[key], f"{path}.{key}")
            if difference:
                return difference
        return None
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return f"{path}: {len(ours)} elements != {len(theirs)}"
        for index, (a, b) in enumerate(zip(ours, theirs)):
            difference = same_json(a, b, f"{path}[{index}]")
            if difference:
                return difference
        return None
    if isinstance(ours, float) or isinstance(theirs, float):
        if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)) and not isinstance(ours, bool) and not isinstance(theirs, bool):
            if ours == theirs or (math.isnan(ours) and math.isnan(theirs)) or _same_float32(ours, theirs):
                return None
        return f"{path}: {ours!r} != {theirs!r}"
    if type(ours) is not type(theirs) or ours != theirs:
        return f"{path}: {ours!r} != {theirs!r}"
    return None


def _same_float32(a: float, b: float) -> bool:
    try:
        return struct.pack("<f", a) == struct.pack("<f", b)
    except OverflowError:
        return False


def wire(message) -> bytes:
    return message.SerializeToString(deterministic=True)


def _describe(message) -> str:
    text = json_format.MessageToJson(message, indent=None)
    return text if len(text) < 1500 else text[:1500] + "…"


# --------------------------------------------------------------------------------------------
# Tests


def test_every_proto_file_and_message_type_is_covered(schema, oracle):
    assert set(schema.files) == set(PROTO_FILES + WELL_KNOWN_FILES)
    names = [m.full_name for m in schema.all_messages()]
    assert "portal.testing.v1.AllKinds" in names and "google.rpc.Status" in names and len(names) > 50
    unknown = [name for name in names if "error" in oracle.json_of(name, b"")]
    assert unknown == [], f"the oracle does not know {unknown}"


@pytest.mark.parametrize("file_name", PROTO_FILES + WELL_KNOWN_FILES)
def test_binary_to_json_matches_json_format(file_name, schema, oracle):
    failures = []
    for message_descriptor in schema.messages_of(file_name):
        for message in samples(message_descriptor, schema):
            answer = oracle.json_of(message_descriptor.full_name, message.SerializeToString())
            if "json" not in answer:
                failures.append(f"{message_descriptor.full_name}: {answer.get('error')} for {_describe(message)}")
                continue
            ours = json.loads(answer["json"])
            theirs = json_format.MessageToDict(message)
            difference = same_json(ours, theirs)
            if difference:
                failures.append(f"{message_descriptor.full_name}: {difference}\n  ours:   {answer['json'][:1500]}\n  theirs: {json.dumps(theirs)[:1500]}")
                continue
            reparsed = json_format.Parse(answer["json"], Schema.new(message_descriptor))
            if wire(reparsed) != wire(message):
                failures.append(f"{message_descriptor.full_name}: our JSON parses back to a different message: {answer['json'][:1500]}")
    assert not failures, f"{len(failures)} differences, the first:\n" + "\n".join(failures[:5])


@pytest.mark.parametrize("file_name", PROTO_FILES + WELL_KNOWN_FILES)
def test_json_to_binary_matches_json_format(file_name, schema, oracle):
    failures = []
    for message_descriptor in schema.messages_of(file_name):
        for message in samples(message_descriptor, schema):
            for preserving in (False, True):
                text = json_format.MessageToJson(message, preserving_proto_field_name=preserving)
                answer = oracle.binary_of(message_descriptor.full_name, text)
                if "binary" not in answer:
                    failures.append(f"{message_descriptor.full_name}: {answer.get('error')} for {text[:1500]}")
                    continue
                decoded = Schema.new(message_descriptor)
                decoded.ParseFromString(base64.b64decode(answer["binary"]))
                if wire(decoded) != wire(message):
                    failures.append(f"{message_descriptor.full_name}: {text[:1500]}\n  became {_describe(decoded)}")
    assert not failures, f"{len(failures)} differences, the first:\n" + "\n".join(failures[:5])


def _invalid_inputs(message_descriptor):
    """(JSON text, the error our codec must give) for inputs json_format refuses too."""
    cases = [('{"thisFieldDoesNotExist": 1}', "thisFieldDoesNotExist: unknown field")]
    for field in message_descriptor.fields:
        name = field.json_name
        if _is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            key = {F.TYPE_STRING: "k", F.TYPE_BOOL: "true"}.get(key_field.type, "1")
            inner = _bad_value(value_field)
            if inner:
                cases.append((json.dumps({name: {key: inner[0]}}), f'{name}["{key}"]{inner[1]}'))
        elif field.is_repeated:
            inner = _bad_value(field)
            if inner:
                cases.append((json.dumps({name: [_good_value(field), inner[0]]}), f"{name}[1]{inner[1]}"))
        else:
            inner = _bad_value(field)
            if inner:
                cases.append((json.dumps({name: inner[0]}), f"{name}{inner[1]}"))
    return cases


def _bad_value(field):
    """A value the field refuses and the rest of the error text, or None."""
    if field.type == F.TYPE_ENUM:
        return "NOT_A_VALUE_OF_THIS_ENUM", f': unknown value "NOT_A_VALUE_OF_THIS_ENUM" for enum {field.enum_type.full_name}'
    if field.type == F.TYPE_MESSAGE and field.message_type.full_name == "google.protobuf.Timestamp":
        return "not a time", ": expected an RFC 3339 timestamp"
    if field.type == F.TYPE_MESSAGE and field.message_type.full_name != "google.protobuf.Any":
        return {"bogusField": 1}, ".bogusField: unknown field"
    return None


def _good_value(field):
    if field.type == F.TYPE_ENUM:
        return field.enum_type.values[0].name
    if field.type == F.TYPE_MESSAGE and field.message_type.full_name == "google.protobuf.Timestamp":
        return "2024-01-01T00:00:00Z"
    return {}


@pytest.mark.parametrize("file_name", PROTO_FILES)
def test_invalid_json_is_refused_naming_the_field(file_name, schema, oracle):
    failures = []
    checked = 0
    for message_descriptor in schema.messages_of(file_name):
        if message_descriptor.GetOptions().map_entry:
            continue
        for text, expected in _invalid_inputs(message_descriptor):
            with pytest.raises(json_format.ParseError):
                json_format.Parse(text, Schema.new(message_descriptor))
            answer = oracle.binary_of(message_descriptor.full_name, text)
            checked += 1
            if answer.get("error") != expected:
                failures.append(f"{message_descriptor.full_name} {text}: {answer} != {expected!r}")
    assert checked > 0
    assert not failures, f"{len(failures)} of {checked} differ, the first:\n" + "\n".join(failures[:10])


def test_the_echo_all_kinds_message_with_every_extreme(schema, oracle):
    """The all-kinds echo message, every field at an extreme, both directions, exactly."""
    pb = support.protos()
    message = pb.echo.AllKinds(
        int32_value=-(2**31), int64_value=-(2**63), uint32_value=2**32 - 1, uint64_value=2**64 - 1, sint32_value=2**31 - 1,
        sint64_value=2**63 - 1, fixed32_value=2**32 - 1, fixed64_value=2**64 - 1, sfixed32_value=-(2**31), sfixed64_value=-(2**63),
        float_value=math.nan, double_value=-math.inf, bool_value=True, string_value="\x00\x1f\"\\/ é 🎉", bytes_value=b"\x00\xff\xfe",
        colour=1234, maybe_int32=0, maybe_string="", maybe_bool=False, maybe_colour=0, maybe_bytes=b"",
        repeated_int32=[0, -1, 2**31 - 1], repeated_string=["", "a"], repeated_bytes=[b"", b"\x01"], repeated_colour=[0, 2, 99],
        repeated_double=[-0.0, 5e-324, math.inf], labels={"": "", "ключ": "значение"}, choice_number=0,
    )
    message.nested.SetInParent()
    message.time.FromJsonString("0001-01-01T00:00:00.000000001Z")
    message.repeated_nested.add(label="x", weight=-(2**63))
    message.nested_by_id[-(2**31)].label = "min"
    answer = oracle.json_of("portal.testing.v1.AllKinds", message.SerializeToString())
    assert same_json(json.loads(answer["json"]), json_format.MessageToDict(message)) is None, answer
    assert json.loads(answer["json"])["time"] == "0001-01-01T00:00:00.000000001Z"
    assert json.loads(answer["json"])["floatValue"] == "NaN" and json.loads(answer["json"])["int64Value"] == str(-(2**63))
    for preserving in (False, True):
        back = oracle.binary_of("portal.testing.v1.AllKinds", json_format.MessageToJson(message, preserving_proto_field_name=preserving))
        decoded = pb.echo.AllKinds.FromString(base64.b64decode(back["binary"]))
        assert wire(decoded) == wire(message)
