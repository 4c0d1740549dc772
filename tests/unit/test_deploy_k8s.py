"""deploy/k8s/: schemas (kubernetes-validate --strict, and the vendored CloudNativePG CRD), the
restricted Pod Security level for every pod, and what Quipu's roles need (probes, metrics
ports, standbys, PodDisruptionBudgets, commands and settings Quipu knows)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from quipu.cli.parser import build_parser
from tests.unit.pod_security import pod_spec, restricted_violations
from tests.unit.test_deploy_compose import quipu_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"  # the oldest the manifests need (image volumes, for pgvector)
# Kinds kubernetes-validate has no schema for, and the vendored CRD schema each is checked against.
CRD_SCHEMAS = {("postgresql.cnpg.io/v1", "Cluster"): ROOT / "deploy" / "schemas" / "cnpg-cluster.json"}


def resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _file, doc in resources() if doc["kind"] == kind}


def workloads() -> list[dict[str, Any]]:
    return [doc for _file, doc in resources() if pod_spec(doc) is not None]


def quipu_roles() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["labels"]["role"]: doc for doc in by_kind("Deployment").values()}


def _strict(schema: Any) -> Any:
    """The CRD schema, refusing unknown fields as ``kubectl apply`` (strict field validation) does."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        open_object = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
        if "properties" in schema and not open_object:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


@pytest.mark.parametrize(("file", "resource"), resources(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_document_validates_strictly(file: str, resource: dict[str, Any]) -> None:
    crd = CRD_SCHEMAS.get((resource["apiVersion"], resource["kind"]))
    if crd is None:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)  # raises on any error
        return
    # kubernetes-validate ships the core API's schemas only; a custom resource is checked
    # against its operator's CRD schema (vendored, see deploy/schemas/README.md).
    print(f"{file}: {resource['kind']} checked against {crd.name}, not kubernetes-validate (a CRD)")
    schema = json.loads(crd.read_text())
    assert schema["kind"] == resource["kind"] and resource["apiVersion"] == f"{schema['group']}/{schema['version']}"
    validator = jsonschema.Draft7Validator(_strict(schema["openAPIV3Schema"]))
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(resource)]
    assert errors == []


def test_the_crd_check_can_fail() -> None:
    (cluster,) = by_kind("Cluster").values()
    broken = copy.deepcopy(cluster)
    broken["spec"]["instancez"] = 3
    broken["spec"]["storage"]["size"] = 20
    schema = json.loads(CRD_SCHEMAS[("postgresql.cnpg.io/v1", "Cluster")].read_text())
    errors = list(jsonschema.Draft7Validator(_strict(schema["openAPIV3Schema"])).iter_errors(broken))
    assert len(errors) == 2


@pytest.mark.parametrize("workload", workloads(), ids=lambda w: f"{w['kind']}/{w['metadata']['name']}")
def test_every_pod_meets_the_restricted_level(workload: dict[str, Any]) -> None:
    spec = pod_spec(workload)
    assert spec is not None
    assert restricted_violations(spec) == []
    for container in spec["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, container["name"]
    user = spec["securityContext"]["runAsUser"]
    assert isinstance(user, int) and user > 0
    assert spec.get("automountServiceAccountToken") is False  # none of them talks to the API server


def test_the_restricted_checker_catches_each_rule() -> None:
    bad = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "securityContext": {"runAsUser": 0},
        "containers": [
            {
                "name": "c",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
            }
        ],
    }
    problems = " | ".join(restricted_violations(bad))
    for rule in ("hostNetwork", "hostPath", "runAsUser 0", "privileged", "drop ALL", "SYS_ADMIN"):
        assert rule in problems
    for rule in ("allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile", "hostPort 80"):
        assert rule in problems


def test_the_namespace_enforces_the_restricted_level() -> None:
    (namespace,) = by_kind("Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {doc["metadata"].get("namespace") for _f, doc in resources() if doc["kind"] != "Namespace"} == {"quipu"}


def test_every_role_has_probes_and_a_metrics_port_its_command_serves() -> None:
    parser = build_parser()
    assert set(quipu_roles()) == {"api", "relay", "projector"}
    for role, deployment in quipu_roles().items():
        template = deployment["spec"]["template"]
        (container,) = template["spec"]["containers"]
        args = parser.parse_args(container["args"])  # a command the CLI accepts
        assert args.command == role
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        served = 8000 if role == "api" else args.health_port
        assert served in ports.values(), role
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == served
        for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
            check = container[probe]["httpGet"]
            assert check["path"] == path and ports[check["port"]] == served, (role, probe)


def test_relay_and_projector_run_one_active_and_one_standby() -> None:
    roles = quipu_roles()
    for role in ("relay", "projector"):
        spec = roles[role]["spec"]
        assert spec["replicas"] == 2, role
        # A new pod starts (and waits for the lock) before an old one goes: no gap in a rollout.
        assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert roles["api"]["spec"]["replicas"] >= 2


def test_every_workload_has_a_disruption_budget_that_selects_it() -> None:
    budgets = list(by_kind("PodDisruptionBudget").values())
    for workload in workloads():
        labels = workload["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, workload["metadata"]["name"]
        spec = matching[0]["spec"]
        assert spec.get("minAvailable", 0) >= 1 or spec.get("maxUnavailable") == 1


def test_nats_is_a_three_node_statefulset_in_operator_mode() -> None:
    nats = by_kind("StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == 3
    conf = by_kind("ConfigMap")["nats-config"]["data"]["nats.conf"]
    assert conf.count("nats-route://") == 3 and "include ./auth.conf" in conf
    assert "max_payload: 8388608" in conf
    assert by_kind("Service")["nats-headless"]["spec"]["clusterIP"] == "None"
    assert nats["spec"]["serviceName"] == "nats-headless"


def test_postgres_is_a_cloudnativepg_cluster_with_a_synchronous_standby() -> None:
    (cluster,) = by_kind("Cluster").values()
    assert cluster["spec"]["instances"] >= 3
    assert cluster["spec"]["postgresql"]["synchronous"]["number"] >= 1
    assert "Why an operator" in (K8S / "postgres.yaml").read_text()
    # Quipu reads the URL from the Secret the operator makes for the database owner.
    app_secret = f"{cluster['metadata']['name']}-app"
    for deployment in quipu_roles().values():
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["QUIPU_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": app_secret, "key": "uri"}


def test_every_quipu_variable_named_is_a_real_setting() -> None:
    real = quipu_settings()
    for deployment in quipu_roles().values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            named = {e["name"] for e in container["env"] if e["name"].startswith("QUIPU_")}
            assert named and named <= real, named - real
            assert {"name": "QUIPU_NATS_REPLICAS", "value": "3"} in container["env"]
