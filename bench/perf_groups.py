#!/usr/bin/env python3
"""Sums `perf report --stdio --no-children --sort dso,sym` percentages into function groups.

Reads the report on standard input; prints each group's share of the sampled server CPU time and,
with --top N, the N hottest symbols (demangled with `swift demangle` when it is on PATH).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[([.k])\]\s+(.*)$")

# (group, dso pattern, symbol pattern): first match wins; Swift symbols are matched mangled, where
# module names appear as written (e.g. 11PortalHTTP2).
RULES = [
    ("kernel: sockets, epoll, scheduling", r"kernel", r""),
    ("nghttp2: HTTP/2 frames and HPACK", r"libnghttp2", r""),
    ("protobuf-c: pack and unpack", r"libprotobuf-c", r""),
    ("malloc and free", r"libc\.so", r"malloc|free|_int_|realloc|calloc|tcache|arena"),
    ("memcpy, memmove, memset", r"libc\.so", r"mem(cpy|move|set|cmp)"),
    ("libc, other (locks, time)", r"libc\.so|libpthread|ld-linux", r""),
    ("Swift retain and release", r"", r"swift_(retain|release|bridgeObjectRetain|bridgeObjectRelease|unknownObject)"),
    ("Swift allocation", r"", r"swift_(allocObject|deallocObject|slowAlloc|slowDealloc|allocBox|deallocClassInstance|deallocUninitialized|initStackObject)"),
    ("Swift concurrency: tasks, continuations, executors", r"libswift_Concurrency", r""),
    ("Swift concurrency: tasks, continuations, executors", r"", r"swift_task|swift_job|swift_continuation|Continuation"),
    # With the standard library linked statically the runtime's symbols are in the binary itself.
    ("Swift concurrency: tasks, continuations, executors", r"", r"withStatusRecordLock|swift::AsyncTask|TaskAllocator|StackAllocator|swift::runJob|swift::Job|TaskStatus|swift::TaskGroup"),
    ("Swift runtime, other (generics, casts, strings)", r"libswiftCore|libswift_", r""),
    ("Swift runtime, other (generics, casts, strings)", r"", r"^(swift_|swift::|__swift_|_swift_|\$ss|\$sS[A-Za-z])"),
    ("SwiftNIO: event loop, channel pipeline, buffers", r"", r"NIOCore|NIOPosix|7NIOCore|8NIOPosix|NIOLoopBound"),
    ("our transport (PortalHTTP2)", r"", r"PortalHTTP2|11PortalHTTP2"),
    ("RPC core and interceptors (PortalRPC, PortalApp)", r"", r"PortalRPC|9PortalRPC|PortalApp|9PortalApp"),
    ("protobuf marshalling, Swift side (PortalProtobuf, PortalAPI)", r"", r"PortalProtobuf|PortalAPI|PortalProtoC|PortalTestServices"),
    ("metrics and logging", r"", r"Metrics|Logging|CoreMetrics"),
    ("Foundation and dispatch", r"Foundation|libdispatch", r""),
    ("other", r"", r""),
]


def group_of(dso: str, symbol: str) -> str:
    for name, dso_pattern, symbol_pattern in RULES:
        if dso_pattern and not re.search(dso_pattern, dso):
            continue
        if symbol_pattern and not re.search(symbol_pattern, symbol):
            continue
        return name
    return "other"


def demangle(symbols: list[str]) -> list[str]:
    tool = shutil.which("swift-demangle") or shutil.which("swift")
    if not tool:
        return symbols
    command = [tool, "--simplified"] if tool.endswith("swift-demangle") else [tool, "demangle", "--simplified"]
    try:
        out = subprocess.run(command, input="\n".join(symbols), capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return symbols
    lines = out.splitlines()
    return lines if len(lines) == len(symbols) else symbols


def main() -> int:
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 0
    groups: dict[str, float] = {}
    rows: list[tuple[float, str, str]] = []
    for line in sys.stdin:
        match = LINE.match(line)
        if not match:
            continue
        share, dso, _, symbol = float(match.group(1)), match.group(2), match.group(3), match.group(4).strip()
        groups[group_of(dso, symbol)] = groups.get(group_of(dso, symbol), 0.0) + share
        rows.append((share, dso, symbol))
    total = sum(groups.values())
    print(f"{'share':>7}  group (of {total:.1f}% of samples attributed)")
    for name, share in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"{share:6.1f}%  {name}")
    if top:
        rows.sort(key=lambda row: -row[0])
        names = demangle([row[2] for row in rows[:top]])
        print(f"\nhottest {top} symbols:")
        for (share, dso, _), name in zip(rows[:top], names):
            print(f"{share:6.2f}%  {dso:<24.24}  {name[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
