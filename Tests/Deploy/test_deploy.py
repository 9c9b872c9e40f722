"""Deployment artefacts: the container image provides every shared library the release binary
links, the Kubernetes manifests (backends on SQLite in deploy/k8s, on PostgreSQL with several replicas
in deploy/k8s/postgres) and compose file are valid and lint-clean and wire mutual TLS between the
services, and scripts/dev-certs issues certificates that fit them.

Run as `PORTAL_RELEASE_BIN=<static release build of portal> python -m pytest Tests/Deploy`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def kustomization_files(folder: Path) -> list[Path]:
    """The manifest files the kustomization in `folder` lists, with those of the folders it includes."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    files = []
    for resource in kustomization["resources"]:
        path = (folder / resource).resolve()
        files += kustomization_files(path) if path.is_dir() else [path]
    return files


# The ways to run the portal: `kubectl apply -k deploy/k8s` (backends on SQLite, one replica each) or
# `kubectl apply -k deploy/k8s/postgres` (backends on PostgreSQL, several replicas each).
VARIANTS = {"sqlite": K8S, "postgres": K8S / "postgres"}
VARIANT_MANIFESTS = {variant: kustomization_files(folder) for variant, folder in VARIANTS.items()}
ALL_MANIFESTS = sorted({manifest for manifests in VARIANT_MANIFESTS.values() for manifest in manifests})
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


def test_every_manifest_belongs_to_a_variant():
    """Every file under deploy/k8s (but cert-manager's) is applied by a variant, so the tests see it."""
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or "cert-manager" in path.relative_to(K8S).parts:
            continue
        assert path.resolve() in ALL_MANIFESTS, f"{path.relative_to(K8S)} is in no kustomization"


@pytest.mark.parametrize("variant", VARIANTS)
def test_kubernetes_manifests_validate_against_the_schemas(variant):
    result = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION,
         *map(str, VARIANT_MANIFESTS[variant])],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = set(re.findall(r"resource (\w+)/", result.stdout))
    assert {"deployment", "service", "configmap", "poddisruptionbudget", "networkpolicy",
            "horizontalpodautoscaler"} <= kinds, kinds
    assert ("statefulset" in kinds) == (variant == "sqlite"), kinds


@pytest.mark.parametrize("variant", VARIANTS)
def test_kustomize_builds_every_listed_object(variant):
    if not shutil.which("kubectl"):
        pytest.skip("needs kubectl (kubectl kustomize)")
    result = subprocess.run(["kubectl", "kustomize", str(VARIANTS[variant])], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    built = {(document["kind"], document["metadata"]["name"])
             for document in yaml.safe_load_all(result.stdout) if document}
    listed = {(document["kind"], document["metadata"]["name"])
              for manifest in VARIANT_MANIFESTS[variant] for document in documents(manifest)}
    assert built == listed
    assert all(document["metadata"].get("namespace", "portal") == "portal"
               for document in yaml.safe_load_all(result.stdout) if document)


def test_every_workload_has_grpc_probes_resources_and_a_grace_period():
    for manifest in ALL_MANIFESTS:
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


# TLS: every service serves with its own certificate; the backends require client certificates; the
# gateway and the outbox relays (identity, entitlements → audit) verify the servers they call.
SERVICES = ("gateway", "entitlements", "identity", "audit")
BACKENDS = ("entitlements", "identity", "audit")
CALLERS = ("gateway", "entitlements", "identity")
TLS_DIR = "/etc/portal/tls"


def expected_tls_environment(service: str) -> dict[str, str]:
    """The PORTAL_TLS_* file settings `service` needs, as the mounted Secret names its files."""
    expected = {"PORTAL_TLS_CERT": f"{TLS_DIR}/tls.crt", "PORTAL_TLS_KEY": f"{TLS_DIR}/tls.key"}
    if service in BACKENDS:
        expected["PORTAL_TLS_CLIENT_CA"] = f"{TLS_DIR}/ca.crt"
    if service in CALLERS:
        expected["PORTAL_TLS_CA"] = f"{TLS_DIR}/ca.crt"
    return expected


def tls_environment(environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in environment.items()
            if name in ("PORTAL_TLS_CERT", "PORTAL_TLS_KEY", "PORTAL_TLS_CLIENT_CA", "PORTAL_TLS_CA")}


def documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def kubernetes_objects(kind: str, variant: str = "sqlite") -> dict[str, dict]:
    """The objects of `kind` in `variant`'s manifests, by name."""
    return {document["metadata"]["name"]: document
            for manifest in VARIANT_MANIFESTS[variant] for document in documents(manifest) if document["kind"] == kind}


def workloads_of(variant: str) -> dict[str, dict]:
    """The Deployments and StatefulSets in `variant`'s manifests, by name."""
    return kubernetes_objects("Deployment", variant) | kubernetes_objects("StatefulSet", variant)


def portal_config() -> dict[str, str]:
    return kubernetes_objects("ConfigMap")["portal-config"]["data"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_workload_mounts_its_tls_secret_and_names_the_files(variant):
    workloads = workloads_of(variant)
    assert set(workloads) == set(SERVICES)
    for service, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        [container] = pod["containers"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        [mount] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == TLS_DIR]
        assert mount.get("readOnly") is True, service
        assert "subPath" not in mount, f"{service}: a subPath mount never sees a renewed certificate"
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == f"portal-{service}-tls"
        mode = secret.get("defaultMode", 0o644)
        assert mode & 0o040 and not mode & 0o007, f"{service}: the key should be group-readable only ({mode:o})"
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"], \
            f"{service}: the files' group (fsGroup) must be the process's group"
        environment = {variable["name"]: variable.get("value") for variable in container.get("env", [])}
        assert tls_environment(environment) == expected_tls_environment(service), service
        assert any(source["configMapRef"]["name"] == "portal-config" for source in container["envFrom"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_backends_require_client_certificates_and_the_gateway_identity_is_shared(variant):
    config = kubernetes_objects("ConfigMap", variant)["portal-config"]["data"]
    assert config["PORTAL_GATEWAY_IDENTITY"] == "gateway"
    assert config.get("PORTAL_TLS_MIN_VERSION", "1.3") in ("1.2", "1.3")
    workloads = workloads_of(variant)
    for service in BACKENDS:
        [container] = workloads[service]["spec"]["template"]["spec"]["containers"]
        assert {variable["name"] for variable in container["env"]} >= {"PORTAL_TLS_CLIENT_CA"}, service
    # The gateway serves the portal's own clients, who have no client certificates.
    [gateway] = workloads["gateway"]["spec"]["template"]["spec"]["containers"]
    assert "PORTAL_TLS_CLIENT_CA" not in {variable["name"] for variable in gateway["env"]}
    # Browsers reach the web listener over HTTPS: the port the gateway is told is the one it exposes.
    web_port = {variable["name"]: variable.get("value") for variable in gateway["env"]}["PORTAL_WEB_PORT"]
    assert {"name": "web", "containerPort": int(web_port)} in gateway["ports"]
    assert "web" in {port["targetPort"] for port in kubernetes_objects("Service", variant)["gateway"]["spec"]["ports"]}
    # The ports speak TLS now; a Service must not promise cleartext HTTP/2 to proxies.
    for name, service in kubernetes_objects("Service", variant).items():
        for port in service["spec"]["ports"]:
            assert port.get("appProtocol") != "kubernetes.io/h2c", name


# PostgreSQL: each backend a Deployment of several replicas sharing its own database, named by a Secret.
def test_the_sqlite_backends_keep_one_replica_on_a_persistent_volume():
    for service in BACKENDS:
        workload = kubernetes_objects("StatefulSet")[service]
        assert workload["spec"]["replicas"] == 1, f"{service}: SQLite has one writer"
        assert [claim["metadata"]["name"] for claim in workload["spec"]["volumeClaimTemplates"]] == ["data"]
        [container] = workload["spec"]["template"]["spec"]["containers"]
        assert "PORTAL_DATABASE_URL" not in {variable["name"] for variable in container["env"]}, service


def test_the_postgres_backends_are_deployments_of_several_replicas_spread_over_nodes():
    deployments = kubernetes_objects("Deployment", "postgres")
    assert not kubernetes_objects("StatefulSet", "postgres")
    for service in BACKENDS:
        spec = deployments[service]["spec"]
        assert spec["replicas"] > 1, service
        assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        pod = spec["template"]["spec"]
        [preference] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        term = preference["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname", service
        assert term["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"], service
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_the_postgres_backends_take_their_own_database_url_from_a_secret():
    deployments = kubernetes_objects("Deployment", "postgres")
    secrets = set()
    for service in SERVICES:
        [container] = deployments[service]["spec"]["template"]["spec"]["containers"]
        variables = {variable["name"]: variable for variable in container["env"]}
        if service not in BACKENDS:
            assert "PORTAL_DATABASE_URL" not in variables, "the gateway keeps no data"
            continue
        variable = variables["PORTAL_DATABASE_URL"]
        assert "value" not in variable, f"{service}: the URL holds a password; it belongs in a Secret"
        assert variable["valueFrom"] == {"secretKeyRef": {"name": f"portal-{service}-database", "key": "url"}}
        secrets.add(variable["valueFrom"]["secretKeyRef"]["name"])
    assert len(secrets) == len(BACKENDS), "each backend has a database of its own"
    [audit] = deployments["audit"]["spec"]["template"]["spec"]["containers"]
    key = {variable["name"]: variable for variable in audit["env"]}["PORTAL_WEBHOOK_SECRETS_KEY"]
    assert key["valueFrom"] == {"secretKeyRef": {"name": "portal-audit-database", "key": "webhook-secrets-key", "optional": True}}


def test_the_postgres_backends_claim_no_persistent_volumes():
    objects = [document for manifest in VARIANT_MANIFESTS["postgres"] for document in documents(manifest)]
    assert not [document for document in objects if document["kind"] == "PersistentVolumeClaim"]
    for service in BACKENDS:
        spec = kubernetes_objects("Deployment", "postgres")[service]["spec"]
        assert "volumeClaimTemplates" not in spec, service
        pod = spec["template"]["spec"]
        assert not [volume for volume in pod["volumes"] if "persistentVolumeClaim" in volume], service
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        [container] = pod["containers"]
        [data] = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/data"]
        assert volumes[data["name"]] == {"name": data["name"], "emptyDir": {}}, service


def test_the_postgres_backends_run_like_the_sqlite_ones():
    """The same image, probes, resources, security, ports, TLS files and Services; only the storage differs."""
    for service in BACKENDS:
        sqlite = kubernetes_objects("StatefulSet")[service]["spec"]["template"]
        postgres = kubernetes_objects("Deployment", "postgres")[service]["spec"]["template"]
        assert postgres["metadata"] == sqlite["metadata"], service
        for key in ("terminationGracePeriodSeconds", "securityContext"):
            assert postgres["spec"][key] == sqlite["spec"][key], f"{service}: {key}"
        [sqlite_container] = sqlite["spec"]["containers"]
        [postgres_container] = postgres["spec"]["containers"]
        for key in ("image", "args", "envFrom", "ports", "startupProbe", "livenessProbe", "readinessProbe",
                    "resources", "securityContext", "volumeMounts"):
            assert postgres_container[key] == sqlite_container[key], f"{service}: {key}"
        # Only the database and, for audit, the webhook secrets key that replicas share differ.
        shared_database_only = {"PORTAL_DATABASE_URL", "PORTAL_WEBHOOK_SECRETS_KEY"}
        assert [variable for variable in postgres_container["env"] if variable["name"] not in shared_database_only] \
            == sqlite_container["env"], service
        tls = [volume for volume in sqlite["spec"]["volumes"] if "secret" in volume]
        assert tls and all(volume in postgres["spec"]["volumes"] for volume in tls), service
        assert kubernetes_objects("Service", "postgres")[service] == kubernetes_objects("Service")[service]


def test_the_postgres_disruption_budgets_let_a_node_drain_one_replica_at_a_time():
    deployments = kubernetes_objects("Deployment", "postgres")
    budgets = kubernetes_objects("PodDisruptionBudget", "postgres")
    for service in BACKENDS:
        replicas = deployments[service]["spec"]["replicas"]
        budget = budgets[service]["spec"]
        assert budget["selector"] == deployments[service]["spec"]["selector"], service
        if "maxUnavailable" in budget:
            assert isinstance(budget["maxUnavailable"], int) and 1 <= budget["maxUnavailable"] < replicas, service
        else:
            assert isinstance(budget["minAvailable"], int) and 1 <= budget["minAvailable"] < replicas, service


def test_cert_manager_certificates_produce_the_secrets_the_workloads_mount():
    folder = DEPLOY / "k8s" / "cert-manager"
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects = [document for resource in kustomization["resources"] for document in documents(folder / resource)]
    issuers = {document["metadata"]["name"]: document for document in objects if document["kind"] == "Issuer"}
    certificates = {document["spec"]["secretName"]: document["spec"]
                    for document in objects if document["kind"] == "Certificate"}
    config = portal_config()
    # The name each service's callers dial, which its certificate must carry.
    dialled = {"gateway": config["PORTAL_GATEWAY_IDENTITY"]}
    for service in BACKENDS:
        dialled[service] = config[f"PORTAL_{service.upper()}_ADDRESS"].rsplit(":", 1)[0]
    for service in SERVICES:
        certificate = certificates[f"portal-{service}-tls"]
        assert dialled[service] in certificate["dnsNames"], service
        assert f"{service}.portal.svc.cluster.local" in certificate["dnsNames"], service
        assert {"server auth", "client auth"} <= set(certificate["usages"]), service
        issuer = issuers[certificate["issuerRef"]["name"]]
        assert "ca" in issuer["spec"], f"{service}: a CA issuer writes ca.crt into the Secret"
        assert certificates[issuer["spec"]["ca"]["secretName"]]["isCA"] is True


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_wires_mutual_tls_with_the_certificates_from_dev_certs():
    services = compose()["services"]
    certs = services["certs"]
    assert "./certs:/certs:ro" in certs["volumes"]
    copied_to = dict(volume.split(":", 1) for volume in certs["volumes"][1:])
    for service in SERVICES:
        definition = services[service]
        assert tls_environment(definition["environment"]) == expected_tls_environment(service), service
        assert definition["environment"]["PORTAL_GATEWAY_IDENTITY"] == "gateway"
        [volume] = [volume for volume in definition["volumes"] if volume.split(":")[1] == TLS_DIR]
        name, _, options = volume.split(":")
        assert options == "ro", service
        assert copied_to[name] == f"/tls/{service}", f"{service}: `certs` must fill the volume it mounts"
        assert definition["depends_on"]["certs"]["condition"] == "service_completed_successfully", service


def run_dev_certs(*arguments: str) -> subprocess.CompletedProcess:
    if not shutil.which("openssl"):
        pytest.skip("scripts/dev-certs needs the openssl command-line tool")
    return subprocess.run(["bash", str(ROOT / "scripts" / "dev-certs"), *arguments], capture_output=True, text=True)


def openssl(*arguments: str) -> str:
    result = subprocess.run(["openssl", *arguments], capture_output=True, text=True)
    assert result.returncode == 0, f"openssl {' '.join(arguments)}: {result.stdout}{result.stderr}"
    return result.stdout


def subject_alternative_names(certificate: Path) -> set[str]:
    text = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(certificate))
    names = set()
    for entry in text.splitlines()[1].split(","):
        kind, _, value = entry.strip().partition(":")
        names.add(f"DNS:{value}" if kind == "DNS" else f"IP:{ipaddress.ip_address(value)}")
    return names


def test_dev_certs_issues_certificates_every_service_can_serve_and_call_with(tmp_path):
    out = tmp_path / "certs"
    result = run_dev_certs("--out", str(out), "--days", "30", "--ip", "10.20.30.40", "--dns", "portal.example.test")
    assert result.returncode == 0, result.stdout + result.stderr
    ca = out / "ca.crt"
    assert "CA:TRUE" in openssl("x509", "-noout", "-ext", "basicConstraints", "-in", str(ca))
    assert "Certificate Sign, CRL Sign" in openssl("x509", "-noout", "-ext", "keyUsage", "-in", str(ca))
    for service in SERVICES:
        certificate, key = out / f"{service}.crt", out / f"{service}.key"
        assert str(certificate) in result.stdout, "it prints what it wrote"
        for purpose in ("sslserver", "sslclient"):
            assert openssl("verify", "-CAfile", str(ca), "-purpose", purpose, str(certificate)).strip().endswith("OK")
        # The names the other services and this machine dial it by, and the extra ones asked for.
        for name in (service, f"{service}.portal.svc", "localhost", "portal.example.test"):
            openssl("verify", "-CAfile", str(ca), "-verify_hostname", name, str(certificate))
        openssl("verify", "-CAfile", str(ca), "-verify_ip", "10.20.30.40", str(certificate))
        assert subject_alternative_names(certificate) == {
            f"DNS:{service}", f"DNS:{service}.portal", f"DNS:{service}.portal.svc",
            f"DNS:{service}.portal.svc.cluster.local", "DNS:localhost", "DNS:portal.example.test",
            "IP:127.0.0.1", "IP:::1", "IP:10.20.30.40"}
        usages = openssl("x509", "-noout", "-ext", "extendedKeyUsage", "-in", str(certificate))
        assert "TLS Web Server Authentication" in usages and "TLS Web Client Authentication" in usages
        assert "prime256v1" in openssl("pkey", "-noout", "-text", "-in", str(key))
        assert openssl("pkey", "-pubout", "-in", str(key)) == openssl("x509", "-noout", "-pubkey", "-in", str(certificate))
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, f"{key.name} should be readable by its owner only"
        openssl("x509", "-noout", "-checkend", str(29 * 86400), "-in", str(certificate))
        assert subprocess.run(["openssl", "x509", "-noout", "-checkend", str(31 * 86400), "-in", str(certificate)],
                              capture_output=True).returncode == 1, "--days 30"
    assert stat.S_IMODE((out / "ca.key").stat().st_mode) == 0o600


def test_dev_certs_reuses_its_ca_and_reissues_only_the_services_asked_for(tmp_path):
    out = tmp_path / "certs"
    assert run_dev_certs("--out", str(out)).returncode == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    result = run_dev_certs("--out", str(out), "--service", "gateway")
    assert result.returncode == 0, result.stdout + result.stderr
    after = {path.name: path.read_bytes() for path in out.iterdir()}
    assert after.keys() == before.keys(), "no files left behind"
    assert after["ca.crt"] == before["ca.crt"] and after["ca.key"] == before["ca.key"]
    assert after["gateway.crt"] != before["gateway.crt"] and after["gateway.key"] != before["gateway.key"]
    assert all(after[name] == before[name] for name in after if not name.startswith(("gateway.", "ca.")))
    openssl("verify", "-CAfile", str(out / "ca.crt"), str(out / "gateway.crt"))
    for arguments in (["--service", "billing"], ["--days", "0"], ["--ip", "10.0.0.1,DNS:evil"], ["--out"], ["--what"]):
        refused = run_dev_certs("--out", str(tmp_path / "refused"), *arguments)
        assert refused.returncode != 0 and refused.stderr, arguments


def test_the_compose_certs_step_installs_dev_certs_output_for_each_service(tmp_path):
    """Runs the `certs` service's script on this machine against scripts/dev-certs output."""
    assert run_dev_certs("--out", str(tmp_path / "certs")).returncode == 0
    certs = compose()["services"]["certs"]
    assert certs["entrypoint"] == ["/bin/sh", "-ec"]
    script = certs["command"][0].replace("$$", "$")
    if os.geteuid() != 0:
        script = script.replace("-o 10001 -g 10001 ", "")  # only root may give the files away
    script = script.replace("/certs/", f"{tmp_path}/certs/").replace("/tls/", f"{tmp_path}/tls/")
    for service in SERVICES:
        (tmp_path / "tls" / service).mkdir(parents=True)
    result = subprocess.run(["/bin/sh", "-ec", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for service in SERVICES:
        installed = tmp_path / "tls" / service
        assert sorted(path.name for path in installed.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
        assert (installed / "tls.crt").read_bytes() == (tmp_path / "certs" / f"{service}.crt").read_bytes()
        assert (installed / "tls.key").read_bytes() == (tmp_path / "certs" / f"{service}.key").read_bytes()
        assert stat.S_IMODE((installed / "tls.key").stat().st_mode) == 0o400
        if os.geteuid() == 0:
            assert (installed / "tls.key").stat().st_uid == 10001
