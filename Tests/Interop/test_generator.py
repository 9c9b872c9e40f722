"""The Swift generator's check that a gateway request and the backend request it is sent on as
agree field by field (`scoped(to:)`), run through protoc on small proto files of the test's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import support

PLUGIN = support.REPO_ROOT / "scripts" / "protoc-gen-portal-swift"

BACKEND = """
syntax = "proto3";
package portal.sample.v1;
message ListThingsRequest {
  // At most 128 bytes.
  string organization_id = 1;
  int32 page_size = 2;
  // At most 200 characters.
  string search_text = 3;
}
"""


def generate(tmp_path: Path, front: str) -> subprocess.CompletedProcess:
    """Runs protoc with the generator over a backend proto and `front`, a gateway-like proto."""
    (tmp_path / "protos").mkdir()
    (tmp_path / "protos" / "backend.proto").write_text(BACKEND)
    (tmp_path / "protos" / "front.proto").write_text(front)
    (tmp_path / "out").mkdir()
    wrapper = tmp_path / "plugin"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {PLUGIN}\n")
    wrapper.chmod(0o755)
    return subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path / 'protos'}", f"--plugin=protoc-gen-portal-swift={wrapper}",
         f"--portal-swift_out={tmp_path / 'out'}", "backend.proto", "front.proto"],
        capture_output=True, text=True, timeout=60)


def front(fields: str) -> str:
    return f"""
syntax = "proto3";
package portal.front.v1;
import "backend.proto";
// Sent on to sample as `portal.sample.v1.ListThingsRequest`, in the caller's organization.
message ListThingsRequest {{
{fields}
}}
service Front {{ rpc ListThings(ListThingsRequest) returns (portal.sample.v1.ListThingsRequest); }}
"""


def test_a_request_sent_on_gets_its_conversion(tmp_path):
    result = generate(tmp_path, front("  int32 page_size = 1;\n  // At most 200 characters.\n  string search_text = 2;"))
    assert result.returncode == 0, result.stderr
    swift = (tmp_path / "out" / "swift" / "front.pb.swift").read_text()
    assert "public func scoped(to organizationID: String) -> Portal_Sample_V1_ListThingsRequest {" in swift
    assert "scoped.organizationID = organizationID" in swift and "scoped.searchText = searchText" in swift


def test_a_field_the_backend_request_lacks_or_types_otherwise_is_refused(tmp_path):
    result = generate(tmp_path, front("  int64 page_size = 1;"))
    assert result.returncode != 0
    assert "portal.front.v1.ListThingsRequest.page_size: portal.sample.v1.ListThingsRequest has no field of that name and type" in result.stderr


def test_a_response_answered_from_a_backend_response_gets_its_initialiser(tmp_path):
    result = generate(tmp_path, """
syntax = "proto3";
package portal.front.v1;
import "backend.proto";
// Answered from `portal.sample.v1.ListThingsRequest`.
message Page {
  string search_text = 3;
}
// Answered from `portal.sample.v1.ListThingsRequest`.
message Wrong {
  repeated string search_text = 1;
}
""")
    assert result.returncode != 0
    assert "portal.front.v1.Wrong.search_text: portal.sample.v1.ListThingsRequest has no field of that name and type" in result.stderr
    again = tmp_path / "again"
    again.mkdir()
    result = generate(again, """
syntax = "proto3";
package portal.front.v1;
import "backend.proto";
// Answered from `portal.sample.v1.ListThingsRequest`.
message Page {
  string search_text = 3;
}
""")
    assert result.returncode == 0, result.stderr
    swift = (again / "out" / "swift" / "front.pb.swift").read_text()
    assert "public init(answering answer: Portal_Sample_V1_ListThingsRequest) {" in swift
    assert "self.searchText = answer.searchText" in swift
