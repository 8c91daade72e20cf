"""What the Kubernetes overlays (deploy/k8s) promise, checked on what `kubectl kustomize`
renders for each of them: locked-down containers with requests and limits, probes on the
API's real endpoints and port, consumers no more than partitions, secrets only by reference,
default-deny networking with the architecture's flows, images pinned by tag per overlay.
`make k8s` validates the same renders against the Kubernetes schemas and runs checkov.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess  # nosec B404 - runs kubectl on the repository's own files
import sys
from pathlib import Path

import pytest
import yaml

from dagster_project.lib.instance import instance_yaml
from ingestion.cli import build_parser
from ingestion.roles.service_roles import ROLES
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "staging", "prod")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
PLATFORM_IMAGE = "valueverse"
# env names that hold a secret: each must come from a Secret by secretKeyRef
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|_HASH")


def _kubectl() -> list[str]:
    """The kubectl `make k8s` chose (KUBECTL, exported by the Makefile), else the one on PATH."""
    command = shlex.split(os.environ.get("KUBECTL") or "kubectl")
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} not installed (`make k8s` provides one)")
    return command


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    kubectl = _kubectl()
    out = {}
    for overlay in OVERLAYS:
        result = subprocess.run(  # nosec B603 - fixed arguments, no shell
            [*kubectl, "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        out[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out


def _of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def _workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in WORKLOADS]


def _containers(pod: dict) -> list[dict]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _component(workload: dict) -> str:
    return workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def _config(docs: list[dict], prefix: str) -> dict:
    """The generated ConfigMap whose name starts with `prefix` (kustomize adds a hash)."""
    (found,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith(prefix)
    ]
    return found


def test_every_overlay_renders_every_part(rendered) -> None:
    for overlay, docs in rendered.items():
        deployments = set(_of_kind(docs, "Deployment"))
        assert deployments == {
            "api",
            "ingest",
            "redis",
            "dashboards",
            "proxy",
            "dagster-code",
            "dagster-webserver",
            "dagster-daemon",
        }, overlay
        assert set(_of_kind(docs, "Job")) == {"roles-apply", "kafka-topics"}, overlay
        assert set(_of_kind(docs, "HorizontalPodAutoscaler")) == {"api"}, overlay
        assert "api" in _of_kind(docs, "PodDisruptionBudget"), overlay
        namespaces = {d["metadata"].get("namespace") for d in docs}
        assert len(namespaces) == 1 and None not in namespaces, (overlay, namespaces)


def test_every_container_is_locked_down_with_requests_and_limits(rendered) -> None:
    checked = 0
    for overlay, docs in rendered.items():
        for workload in _workloads(docs):
            where = (overlay, workload["metadata"]["name"])
            pod = _pod_spec(workload)
            assert pod["automountServiceAccountToken"] is False, where
            context = pod["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == 10001, where  # the Dockerfile's user
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for container in _containers(pod):
                resources = container["resources"]
                for bound in ("requests", "limits"):
                    assert set(resources[bound]) >= {"cpu", "memory"}, (where, bound)
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] is True, where
                assert security["allowPrivilegeEscalation"] is False, where
                assert security["capabilities"] == {"drop": ["ALL"]}, where
                assert security.get("runAsUser", 10001) == 10001, where
                assert "privileged" not in security, where
                checked += 1
    assert checked >= 3 * 10


# the one volume that outlives a pod on purpose: the quality runs write the report there and the
# login proxy serves it (read-only) from another pod
SHARED_WRITABLE = {("dagster-code", "quality-report")}


def test_what_a_container_writes_goes_to_an_empty_dir(rendered) -> None:
    """A read-only root needs somewhere to write: every writable mount is an emptyDir (nothing
    a pod writes outlives it) but the report's shared volume, and every container of the
    platform's image has its /tmp."""
    for overlay, docs in rendered.items():
        for workload in _workloads(docs):
            pod = _pod_spec(workload)
            volumes = {v["name"]: v for v in pod.get("volumes", [])}
            for container in _containers(pod):
                where = (overlay, container["name"])
                mounts = container.get("volumeMounts", [])
                for mount in mounts:
                    volume = volumes[mount["name"]]
                    shared = (workload["metadata"]["name"], mount["name"]) in SHARED_WRITABLE
                    if not mount.get("readOnly") and "subPath" not in mount and not shared:
                        assert "emptyDir" in volume, (where, mount["mountPath"])
                if container["image"].split("/")[-1].startswith(f"{PLATFORM_IMAGE}:"):
                    assert "/tmp" in {m["mountPath"] for m in mounts}, where


def test_the_api_is_probed_on_healthz_and_readyz_at_the_port_it_serves(rendered) -> None:
    default_port = build_parser().parse_args(["api", "serve"]).port
    for overlay, docs in rendered.items():
        api = _of_kind(docs, "Deployment")["api"]
        (container,) = _pod_spec(api)["containers"]
        args = build_parser().parse_args(container["args"])  # a real `valueverse` command
        assert (args.group, args.action) == ("api", "serve"), overlay
        assert args.port == default_port == 8080, overlay
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": args.port}, overlay
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            check = container[probe]["httpGet"]
            assert check["path"] == path, (overlay, probe)
            assert ports.get(check["port"], check["port"]) == args.port, (overlay, probe)
        service = _of_kind(docs, "Service")["api"]
        assert service["spec"]["ports"][0]["targetPort"] in ("http", args.port)


def test_ingest_runs_no_more_consumers_than_the_topic_has_partitions(rendered) -> None:
    """One partition is read by one group member at a time: a replica beyond the partition
    count idles. The partition count lives in one place, the valueverse-kafka ConfigMap,
    which the topics Job creates the topics from."""
    seen = set()
    for overlay, docs in rendered.items():
        kafka = _config(docs, "valueverse-kafka")
        partitions = int(kafka["data"]["VALUEVERSE_TOPIC_PARTITIONS"])
        ingest = _of_kind(docs, "Deployment")["ingest"]
        replicas = ingest["spec"]["replicas"]
        assert 1 <= replicas <= partitions, (overlay, replicas, partitions)
        seen.add((replicas, partitions))
        (container,) = _pod_spec(ingest)["containers"]
        args = build_parser().parse_args(container["args"])  # a real `valueverse` command
        assert (args.group, args.action) == ("ingest", "run"), overlay
        job = _of_kind(docs, "Job")["kafka-topics"]
        (setup,) = _pod_spec(job)["containers"]
        assert {"configMapRef": {"name": kafka["metadata"]["name"]}} in setup["envFrom"]
        assert '--partitions "$VALUEVERSE_TOPIC_PARTITIONS"' in setup["args"][0]
    assert len(seen) == len(OVERLAYS)  # the overlays size them differently


def test_no_secret_is_committed_or_rendered(rendered) -> None:
    for overlay, docs in rendered.items():
        assert not [d for d in docs if d["kind"] == "Secret"], overlay
        for config in (d for d in docs if d["kind"] == "ConfigMap"):
            for key in config.get("data", {}):
                assert not SECRET_NAME.search(key.upper()), (overlay, key)
    for path in K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                assert doc.get("kind") != "Secret", path


def test_every_secret_comes_by_secret_key_ref(rendered) -> None:
    """Secret-looking variables come from a Secret; URLs carry a password only as a $(VAR)
    reference to such a variable, expanded by the kubelet."""
    refs = 0
    for overlay, docs in rendered.items():
        for workload in _workloads(docs):
            for container in _containers(_pod_spec(workload)):
                from_secret = set()
                for env in container.get("env", []):
                    where = (overlay, container["name"], env["name"])
                    if SECRET_NAME.search(env["name"]):
                        assert "secretKeyRef" in env.get("valueFrom", {}), where
                    if "secretKeyRef" in env.get("valueFrom", {}):
                        from_secret.add(env["name"])
                        refs += 1
                    value = env.get("value", "")
                    credentials = re.search(r"://([^/@]*)@", value)
                    if credentials:
                        user, _, password = credentials.group(1).partition(":")
                        reference = re.fullmatch(r"\$\((\w+)\)", password)
                        assert reference and reference.group(1) in from_secret, where
    assert refs > 3 * 15


def test_the_external_secrets_example_makes_every_secret_the_manifests_reference(rendered):
    """deploy/k8s/examples/external-secrets.yaml is the documented way to create the Secrets:
    it must make each Secret, with each key, that some container asks for, and nothing else."""
    referenced = set()
    for docs in rendered.values():
        for workload in _workloads(docs):
            for container in _containers(_pod_spec(workload)):
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        referenced.add((ref["name"], ref["key"]))
    example = K8S / "examples" / "external-secrets.yaml"
    made = {
        (doc["spec"]["target"]["name"], item["secretKey"])
        for doc in yaml.safe_load_all(example.read_text())
        if doc and doc["kind"] == "ExternalSecret"
        for item in doc["spec"]["data"]
    }
    assert made == referenced


def test_each_service_logs_in_as_its_own_role(rendered) -> None:
    expected = {
        "api": ("valueverse_api", "valueverse-db-api"),
        "ingest": ("valueverse_loader", "valueverse-db-loader"),
        "dashboards": ("valueverse_reader", "valueverse-db-reader"),
        "dagster-code": ("valueverse_billing", "valueverse-db-billing"),
    }
    for docs in rendered.values():
        deployments = _of_kind(docs, "Deployment")
        for name, (role, secret) in expected.items():
            (container,) = _pod_spec(deployments[name])["containers"]
            env = {e["name"]: e for e in container["env"]}
            assert env["VALUEVERSE_WAREHOUSE"]["value"].startswith(f"postgresql://{role}:")
            secrets = {
                e["valueFrom"]["secretKeyRef"]["name"]
                for e in env.values()
                if "secretKeyRef" in e.get("valueFrom", {})
            }
            assert secret in secrets, name
        for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
            (container,) = _pod_spec(deployments[name])["containers"]
            env = {e["name"]: e.get("value", "") for e in container["env"]}
            assert env["DAGSTER_PG_STORAGE_URL"].startswith(
                "postgresql+psycopg2://valueverse_dagster:"
            )
        # roles apply sets every login role's password from its own Secret
        (roles,) = _pod_spec(_of_kind(docs, "Job")["roles-apply"])["containers"]
        args = build_parser().parse_args(roles["args"])  # a real `valueverse` command
        assert (args.group, args.action) == ("roles", "apply")
        env = {e["name"]: e.get("valueFrom", {}) for e in roles["env"]}
        for role in (r for r in ROLES if r.login):
            ref = env[role.password_env]["secretKeyRef"]
            assert ref["name"] == f"valueverse-db-{role.kind}", role.kind


def test_dagster_is_not_given_kafka(rendered) -> None:
    """As in compose: with KAFKA_BOOTSTRAP_SERVERS set, Dagster's landed_events would join the
    ingest service's consumer group instead of reading the raw tables."""
    for docs in rendered.values():
        for name in ("dagster-code", "dagster-webserver", "dagster-daemon", "dashboards"):
            (container,) = _pod_spec(_of_kind(docs, "Deployment")[name])["containers"]
            refs = [r["configMapRef"]["name"] for r in container.get("envFrom", [])]
            assert not [r for r in refs if r.startswith("valueverse-kafka")], name
            assert "KAFKA_BOOTSTRAP_SERVERS" not in {e["name"] for e in container["env"]}


def _peers(policy: dict) -> set[str]:
    """The components of this namespace a policy admits."""
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in policy["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if "podSelector" in peer and "namespaceSelector" not in peer
    }


def _egress_ports(policy: dict) -> set[int]:
    return {
        port["port"] for rule in policy["spec"].get("egress", []) for port in rule.get("ports", [])
    }


def test_network_policies_deny_by_default_and_allow_the_architecture_flows(rendered) -> None:
    for overlay, docs in rendered.items():
        policies = _of_kind(docs, "NetworkPolicy")
        deny = policies["default-deny"]["spec"]
        assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
        assert "ingress" not in deny and "egress" not in deny
        selected = {
            p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
            for p in policies.values()
        }
        for workload in _workloads(docs):
            assert _component(workload) in selected, (overlay, workload["metadata"]["name"])

        assert _peers(policies["redis"]) == {"api"}
        assert _peers(policies["dashboards"]) == {"proxy"}
        assert _peers(policies["dagster-webserver"]) == {"proxy"}
        assert _peers(policies["dagster-code"]) == {"dagster-webserver", "dagster-daemon"}
        assert policies["dagster-daemon"]["spec"]["ingress"] == []
        assert _egress_ports(policies["dashboards"]) == {5432}  # PostgreSQL only
        assert _egress_ports(policies["ingest"]) == {5432, 9092}  # PostgreSQL and the brokers
        assert _egress_ports(policies["api"]) == {5432, 9092, 6379}
        assert _egress_ports(policies["proxy"]) == {8501, 3000}
        assert 9092 not in _egress_ports(policies["dagster-code"])
        assert policies["redis"]["spec"]["egress"] == []


def test_images_are_pinned_by_tag_and_the_platform_tag_differs_per_overlay(rendered) -> None:
    platform_tags = {}
    for overlay, docs in rendered.items():
        for workload in _workloads(docs):
            for container in _containers(_pod_spec(workload)):
                image = container["image"]
                name, _, tag = image.rpartition(":")
                assert name and "/" not in tag, (overlay, image)  # a tag, not a registry port
                assert tag != "latest", (overlay, image)
                if name.split("/")[-1] == PLATFORM_IMAGE:
                    platform_tags.setdefault(overlay, set()).add(tag)
    assert all(len(tags) == 1 for tags in platform_tags.values()), platform_tags
    assert len({tags.pop() for tags in platform_tags.values()}) == len(OVERLAYS)


def test_prod_keeps_two_api_replicas_and_one_through_drains(rendered) -> None:
    minimums = {}
    for overlay, docs in rendered.items():
        hpa = _of_kind(docs, "HorizontalPodAutoscaler")["api"]["spec"]
        assert hpa["scaleTargetRef"]["name"] == "api"
        assert hpa["minReplicas"] <= hpa["maxReplicas"]
        minimums[overlay] = hpa["minReplicas"]
        # the HPA owns the API's replica count: an apply must not reset it
        assert "replicas" not in _of_kind(docs, "Deployment")["api"]["spec"]
    assert minimums["prod"] >= 2 and minimums["dev"] <= minimums["prod"]
    budgets = _of_kind(rendered["prod"], "PodDisruptionBudget")
    assert budgets["api"]["spec"]["minAvailable"] >= 1
    assert set(budgets) >= {"api", "ingest", "proxy"}


def test_log_level_and_hostnames_differ_per_overlay(rendered) -> None:
    levels = {o: _config(d, "valueverse-config")["data"]["LOG_LEVEL"] for o, d in rendered.items()}
    assert levels == {"dev": "debug", "staging": "info", "prod": "warning"}
    hosts = {
        overlay: tuple(r["host"] for r in _of_kind(docs, "Ingress")["valueverse"]["spec"]["rules"])
        for overlay, docs in rendered.items()
    }
    assert len(set(hosts.values())) == len(OVERLAYS)
    for rules in hosts.values():
        assert not [h for h in rules if h.endswith(".invalid")]  # the base's placeholders


def test_dagster_runs_the_instance_its_launcher_writes(rendered) -> None:
    docs = rendered["prod"]
    instance = _config(docs, "dagster-instance")["data"]
    assert yaml.safe_load(instance["dagster.yaml"]) == yaml.safe_load(
        instance_yaml(True, Path("/dagster_home"))
    )
    (location,) = yaml.safe_load(instance["workspace.yaml"])["load_from"]
    grpc = location["grpc_server"]
    service = _of_kind(docs, "Service")[grpc["host"]]
    assert service["spec"]["ports"][0]["port"] == grpc["port"]
    (code,) = _pod_spec(_of_kind(docs, "Deployment")["dagster-code"])["containers"]
    assert code["command"][code["command"].index("-p") + 1] == str(grpc["port"])


def test_the_proxy_serves_compose_s_caddyfile_in_front_of_both_uis(rendered) -> None:
    assert (K8S / "base" / "Caddyfile").read_text() == (ROOT / "deploy" / "Caddyfile").read_text()
    docs = rendered["prod"]
    services = _of_kind(docs, "Service")
    (caddy,) = _pod_spec(_of_kind(docs, "Deployment")["proxy"])["containers"]
    env = {e["name"]: e.get("value") for e in caddy["env"]}
    for variable in ("DAGSTER_UPSTREAM", "DASHBOARD_UPSTREAM"):
        host, _, port = env[variable].partition(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, variable
    ingress = _of_kind(docs, "Ingress")["valueverse"]["spec"]["rules"]
    backends = {r["http"]["paths"][0]["backend"]["service"]["name"] for r in ingress}
    assert backends == {"api", "proxy"}  # people reach the UIs only through the login


def test_every_config_map_reference_resolves(rendered) -> None:
    for overlay, docs in rendered.items():
        config_maps = set(_of_kind(docs, "ConfigMap"))
        for workload in _workloads(docs):
            pod = _pod_spec(workload)
            names = [
                v["configMap"]["name"]
                for v in pod.get("volumes", [])
                if "configMap" in v and not v["configMap"].get("optional")
            ]
            for container in _containers(pod):
                names += [r["configMapRef"]["name"] for r in container.get("envFrom", [])]
            for name in names:
                assert name in config_maps, (overlay, workload["metadata"]["name"], name)


def test_every_command_of_the_platform_image_exists(rendered) -> None:
    """The commands the manifests give the platform's image are its venv's console scripts
    (the image installs the same locked dependencies), and the files they name exist."""
    bin_dir = Path(sys.executable).parent
    commands = set()
    for docs in rendered.values():
        for workload in _workloads(docs):
            for container in _containers(_pod_spec(workload)):
                if container["image"].split("/")[-1].split(":")[0] != PLATFORM_IMAGE:
                    continue
                command = container.get("command") or ["valueverse"]  # the image's entrypoint
                commands.add(command[0])
                for word in [*command, *container.get("args", [])]:
                    if word.endswith(".py"):
                        assert (ROOT / word).is_file(), word
    assert commands == {"valueverse", "streamlit", "dagster", "dagster-webserver", "dagster-daemon"}
    for command in commands:
        assert (bin_dir / command).is_file(), command


def test_the_proxy_serves_the_report_the_quality_runs_write(rendered) -> None:
    """The login proxy's report folder is on the volume dagster-code's quality runs write, at
    the Data Docs site under VALUEVERSE_QUALITY_DIR, mounted read-only."""
    for overlay, docs in rendered.items():
        deployments = _of_kind(docs, "Deployment")
        (code,) = _pod_spec(deployments["dagster-code"])["containers"]
        (proxy,) = _pod_spec(deployments["proxy"])["containers"]
        quality_dir = {e["name"]: e.get("value") for e in code["env"]}["VALUEVERSE_QUALITY_DIR"]
        report_dir = {e["name"]: e.get("value") for e in proxy["env"]}[
            "VALUEVERSE_QUALITY_REPORT_DIR"
        ]
        code_mount = {m["name"]: m for m in code["volumeMounts"]}["quality-report"]
        proxy_mount = {m["name"]: m for m in proxy["volumeMounts"]}["quality-report"]
        assert quality_dir == code_mount["mountPath"], overlay
        site = report_dir.removeprefix(proxy_mount["mountPath"])
        assert site == "/gx/uncommitted/data_docs/local_site", overlay
        assert proxy_mount.get("readOnly") is True, overlay
