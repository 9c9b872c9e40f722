"""Deployment artefacts: the container image provides every shared library the release binary
links, and the Kubernetes manifests and compose file are valid and lint-clean.

Run as `PORTAL_RELEASE_BIN=<static release build of portal> python -m pytest Tests/Deploy`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted(path for path in (DEPLOY / "k8s").glob("*.yaml") if path.name != "kustomization.yaml")
KUBERNETES_VERSION = "1.30.0"
# Packages every debian:bookworm-slim image has (the C library, the compiler runtime).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1"}


def runtime_stage(dockerfile: str) -> str:
    """The text of the Dockerfile's last stage."""
    return dockerfile[dockerfile.rindex("\nFROM "):]


def runtime_packages() -> set[str]:
    """The packages the runtime stage installs with apt-get."""
    stage = runtime_stage((DEPLOY / "Dockerfile").read_text())
    install = re.search(r"apt-get install ([^&]*)", stage.replace("\\\n", " "))
    assert install, "the runtime stage installs no packages"
    return {word for word in install.group(1).split() if not word.startswith("-")}


def package_of(library: str) -> str:
    """The Debian package that ships `library` (a path ldd resolved), as dpkg knows it."""
    real = os.path.realpath(library)
    candidates = {library, real}
    for path in list(candidates):
        if path.startswith("/usr/"):
            candidates.add(path[len("/usr"):])
        else:
            candidates.add("/usr" + path)
    for path in candidates:
        found = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if found.returncode == 0:
            return found.stdout.split(":")[0].strip()
    pytest.fail(f"no Debian package ships {library}")


def test_the_runtime_image_provides_every_library_the_binary_links():
    binary = os.environ.get("PORTAL_RELEASE_BIN")
    assert binary and Path(binary).is_file(), "set PORTAL_RELEASE_BIN to the static release build of portal (scripts/test does)"
    linked = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libraries = re.findall(r"=> (/\S+)", linked)
    assert libraries, linked
    assert not [line for line in linked.splitlines() if "not found" in line], linked
    assert not [library for library in libraries if "libswift" in library], "the Swift standard library must be linked statically"
    provided = runtime_packages() | BASE_IMAGE_PACKAGES
    missing = {library: package_of(library) for library in libraries if package_of(library) not in provided}
    assert not missing, f"the runtime stage lacks packages for: {missing}"


def test_the_image_runs_as_a_non_root_user_with_a_static_swift_standard_library():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--static-swift-stdlib" in dockerfile
    stage = runtime_stage(dockerfile)
    assert re.search(r"^USER 10001", stage, re.MULTILINE)
    assert "swift" not in stage.split("COPY --from=build")[0].lower().replace("swift build", ""), "no toolchain in the runtime stage"


def test_kubernetes_manifests_validate_against_the_schemas():
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION, *map(str, MANIFESTS)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = set(re.findall(r"resource (\w+)/", result.stdout))
    assert {"deployment", "statefulset", "service", "configmap", "poddisruptionbudget", "networkpolicy",
            "horizontalpodautoscaler"} <= kinds, kinds


def test_every_workload_has_grpc_probes_resources_and_a_grace_period():
    for manifest in MANIFESTS:
        text = manifest.read_text()
        if "kind: Deployment" not in text and "kind: StatefulSet" not in text:
            continue
        for probe in ("livenessProbe", "readinessProbe"):
            assert re.search(probe + r":\s+grpc:", text), f"{manifest.name}: {probe} should be a native gRPC probe"
        assert "limits:" in text and "requests:" in text, manifest.name
        assert "terminationGracePeriodSeconds: 30" in text, manifest.name
        assert "runAsNonRoot: true" in text, manifest.name


def test_yaml_is_lint_clean():
    config = "{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}}}"
    result = subprocess.run([sys.executable, "-m", "yamllint", "-d", config, str(DEPLOY / "k8s"), str(DEPLOY / "compose.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
