"""deploy/compose.yaml and the NATS configuration it mounts, checked without a container engine.

The file is validated against the Compose Specification's schema (vendored), then for what the
schema cannot know: one published port, commands the ``quipu`` CLI accepts, settings Quipu
reads, a three-node NATS cluster in operator mode whose max_payload is above Quipu's largest
event, and files that exist (or that deploy/make_secrets.py makes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from quipu.cli.parser import build_parser
from quipu.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NATS_CONF = DEPLOY / "nats" / "nats.conf"
QUIPU_ROLES = ("api", "relay", "projector")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def quipu_settings() -> set[str]:
    """Every QUIPU_* variable Quipu's code reads (config.py and the few modules with their own)."""
    names: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        names |= set(re.findall(r"[\"'](QUIPU_[A-Z0-9_]+)[\"']", path.read_text()))
    return names


def secrets_made() -> dict[str, str]:
    """What deploy/make_secrets.py writes (file name -> content), with fixed inputs."""
    import importlib.util

    from bus.nats_auth import OperatorKeys

    spec = importlib.util.spec_from_file_location("make_secrets", DEPLOY / "make_secrets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = module.files(OperatorKeys.generate(), "pw", "k" * 64)
    return {name: content for name, (content, _mode) in made.items()}


def test_valid_against_the_compose_specification() -> None:
    schema = json.loads((DEPLOY / "schemas" / "compose-spec.json").read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(compose())]
    assert errors == []


def _published(service: dict[str, Any]) -> list[str]:
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            if "published" in port:
                ports.append(str(port["published"]))
        elif ":" in str(port):
            ports.append(str(port).rsplit(":", 1)[0].split(":")[-1])
        else:
            ports.append("")  # a container port only: Docker picks a free host port
    return ports


def test_no_host_port_is_published_twice_and_replicated_services_publish_none() -> None:
    published: dict[str, str] = {}
    for name, service in services().items():
        for port in _published(service):
            if not port:
                continue
            replicas = service.get("deploy", {}).get("replicas", 1)
            assert replicas == 1, f"{name}: {replicas} replicas cannot share host port {port}"
            assert port not in published, f"{name} and {published[port]} both publish {port}"
            published[port] = name
    assert published == {"8000": "proxy"}


def test_every_quipu_command_is_one_the_cli_accepts() -> None:
    parser = build_parser()
    roles = {}
    for name, service in services().items():
        if "build" not in service:
            continue
        command = service["command"]
        parser.parse_args(command)  # exits (failing the test) on an unknown command or option
        roles[name] = command[0]
    assert set(roles.values()) == set(QUIPU_ROLES)


def test_replicas_one_active_relay_and_projector_with_a_standby() -> None:
    for name, replicas in {"api": 2, "relay": 2, "projector": 2}.items():
        assert services()[name]["deploy"]["replicas"] == replicas, name


def test_every_quipu_variable_named_is_a_real_setting() -> None:
    real = quipu_settings()
    named = set()
    for service in services().values():
        named |= {k for k in service.get("environment", {}) if k.startswith("QUIPU_")}
    named |= {line.split("=", 1)[0] for line in secrets_made()["quipu.env"].splitlines()}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    named |= set(re.findall(r"\b(QUIPU_[A-Z0-9_]+)=", dockerfile))
    unknown = {n for n in named if n.startswith("QUIPU_")} - real
    assert not unknown
    for needed in ("QUIPU_DATABASE_URL", "QUIPU_NATS_URL", "QUIPU_NATS_ACCOUNT", "QUIPU_NATS_SIGNING_KEY_FILE"):
        assert needed in named


def test_files_mounted_exist_or_are_made_by_make_secrets() -> None:
    document = compose()
    made = secrets_made()
    referenced = [c["file"] for c in document["configs"].values()] + [s["file"] for s in document["secrets"].values()]
    for service in services().values():
        referenced += [f for f in service.get("env_file", [])]
    for file in referenced:
        path = (DEPLOY / file).resolve()
        if path.parent == DEPLOY / "secrets":
            assert path.name in made, f"{file}: make_secrets.py does not make it"
        else:
            assert path.is_file(), file
    assert "*" in (DEPLOY / "secrets" / ".gitignore").read_text().split()


def test_three_nats_nodes_with_one_client_name_and_their_own_storage() -> None:
    nodes = {name: s for name, s in services().items() if s.get("image", "").startswith("nats:")}
    assert sorted(nodes) == ["nats-1", "nats-2", "nats-3"]
    assert {s["environment"]["NATS_SERVER_NAME"] for s in nodes.values()} == set(nodes)
    assert all(s["networks"]["default"]["aliases"] == ["nats"] for s in nodes.values())
    assert len({tuple(s["volumes"]) for s in nodes.values()}) == 3
    routes = re.findall(r"nats-route://([\w-]+):6222", NATS_CONF.read_text())
    assert sorted(routes) == sorted(nodes)
    for service in services().values():
        if "build" in service:
            assert service["environment"]["QUIPU_NATS_URL"] == "nats://nats:4222"
            assert set(nodes) <= set(service["depends_on"])


def test_nats_runs_in_operator_mode_with_a_max_payload_above_the_largest_event() -> None:
    conf = NATS_CONF.read_text()
    (max_payload,) = re.findall(r"^max_payload:\s*(\d+)\s*$", conf, re.M)
    assert int(max_payload) > Settings().max_event_bytes + 64 * 1024  # the event plus its headers
    assert re.search(r"^include \./auth\.conf$", conf, re.M)
    targets = {c["target"] for s in services().values() for c in s.get("configs", []) if isinstance(c, dict)}
    assert {"/etc/nats/nats.conf", "/etc/nats/auth.conf"} <= targets  # the include is beside it
    auth = secrets_made()["nats-auth.conf"]
    assert auth.startswith("operator: ") and "resolver: MEMORY" in auth


@pytest.mark.parametrize("role", ["api", "relay", "projector"])
def test_quipu_containers_are_locked_down(role: str) -> None:
    service = services()[role]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
