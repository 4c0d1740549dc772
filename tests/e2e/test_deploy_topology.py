"""The compose deployment, run for real without containers.

The same processes deploy/compose.yaml starts: three nats-server nodes from deploy/nats/nats.conf
with the keys deploy/make_secrets.py makes, and Quipu's roles (two APIs, two relays, two
projector processes) with the environment compose gives them. Only what a container would
fix differently is passed on the command line: loopback addresses, free ports, data folders.
Also checks that Kubernetes' copy of the NATS configuration is one nats-server accepts.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bus.runtime import NatsEndpoint, connect_nats
from bus.subjects import Subjects
from quipu.embedded import EmbeddedPostgres, free_port, nats_server_binary, postgres_bin_dir

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
QUIPU = [sys.executable, "-m", "quipu.cli"]
DEFINITION = {"nodes": [{"id": "a"}, {"id": "b"}], "edges": [{"from": "a", "to": "b"}]}


def make_secrets(folder: Path) -> dict[str, str]:
    """Run deploy/make_secrets.py as a user would; returns quipu.env's variables."""
    subprocess.run([sys.executable, str(DEPLOY / "make_secrets.py"), str(folder)], check=True, timeout=60)
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    lines = (folder / "quipu.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def nats_config(folder: Path, text: str, secrets: Path) -> Path:
    """nats.conf and its ``include ./auth.conf`` side by side, as both deployments mount them."""
    folder.mkdir(parents=True)
    (folder / "nats.conf").write_text(text)
    (folder / "auth.conf").write_text((secrets / "nats-auth.conf").read_text())
    return folder / "nats.conf"


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(what: str, check: object, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_kubernetes_nats_configuration_is_valid(tmp_path: Path) -> None:
    make_secrets(tmp_path / "secrets")
    (config_map,) = [
        doc for doc in yaml.safe_load_all((DEPLOY / "k8s" / "nats.yaml").read_text()) if doc["kind"] == "ConfigMap"
    ]
    for name, text in (("k8s", config_map["data"]["nats.conf"]), ("compose", (DEPLOY / "nats/nats.conf").read_text())):
        conf = nats_config(tmp_path / name, text, tmp_path / "secrets")
        env = {**os.environ, "NATS_SERVER_NAME": "nats-0"}
        result = subprocess.run([str(nats_server_binary()), "-t", "-c", str(conf)], env=env, capture_output=True)
        assert result.returncode == 0, (name, result.stderr.decode())


def test_the_deployed_nats_is_the_version_tested_here() -> None:
    """compose and Kubernetes run the nats-server minor version these tests start."""
    version = subprocess.run([str(nats_server_binary()), "--version"], capture_output=True, text=True, check=True)
    major, minor = re.search(r" v(\d+)\.(\d+)\.", version.stdout).groups()  # type: ignore[union-attr]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    (statefulset,) = [
        d for d in yaml.safe_load_all((DEPLOY / "k8s" / "nats.yaml").read_text()) if d["kind"] == "StatefulSet"
    ]
    images = {compose["x-nats"]["image"], statefulset["spec"]["template"]["spec"]["containers"][0]["image"]}
    assert images == {f"nats:{major}.{minor}-alpine"}


def test_the_deployed_postgres_is_the_major_version_tested_here() -> None:
    version = subprocess.run([str(postgres_bin_dir() / "postgres"), "--version"], capture_output=True, text=True)
    major = re.search(r"\) (\d+)\.", version.stdout).group(1)  # type: ignore[union-attr]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["services"]["postgres"]["image"] == f"pgvector/pgvector:pg{major}"
    (cnpg,) = yaml.safe_load_all((DEPLOY / "k8s" / "postgres.yaml").read_text())
    assert cnpg["spec"]["imageName"].split(":")[1].startswith(f"{major}-")
    (pgvector,) = cnpg["spec"]["postgresql"]["extensions"]
    assert f"-{major}-" in pgvector["image"]["reference"]


class PortTaken(Exception):
    """A node lost the race for a port free_port chose (another process bound it first)."""


def _start_nodes(root: Path, text: str, secrets: Path) -> tuple[list[subprocess.Popen[bytes]], list[tuple[int, ...]]]:
    nodes: list[subprocess.Popen[bytes]] = []
    ports = [(free_port(), free_port(), free_port()) for _ in range(3)]
    routes = ",".join(f"nats-route://127.0.0.1:{cluster_port}" for _c, cluster_port, _m in ports)
    for i, (client, cluster_port, monitor) in enumerate(ports, start=1):
        node_text = text.replace("store_dir: /data\n", f"store_dir: {root / f'nats-{i}'}\n")
        conf = nats_config(root / f"etc-{i}", node_text, secrets)
        args = ["-c", str(conf), "-a", "127.0.0.1", "-p", str(client), "-m", str(monitor)]
        args += ["--cluster", f"nats://127.0.0.1:{cluster_port}", "--routes", routes]
        args += ["-l", str(root / f"nats-{i}.log")]
        env = {**os.environ, "NATS_SERVER_NAME": f"nats-{i}"}
        nodes.append(subprocess.Popen([str(nats_server_binary()), *args], env=env))
    return nodes, ports


def _wait_healthy(root: Path, nodes: list[subprocess.Popen[bytes]], ports: list[tuple[int, ...]]) -> None:
    """Every node passes compose's and k8s' probes; a node that died fails at once, with its log
    (PortTaken when it could not bind: the caller starts the cluster again on other ports)."""

    def dead() -> bool:
        for i, node in enumerate(nodes, start=1):
            if node.poll() is not None:
                log = (root / f"nats-{i}.log").read_text()
                if "address already in use" in log:
                    raise PortTaken(log[-500:])
                raise AssertionError(f"nats-{i} exited:\n{log[-2000:]}")
        return False

    for _client, _cluster, monitor in ports:
        for path in ("/healthz?js-server-only=true", "/healthz?js-enabled-only=true", "/healthz"):
            wait_for(path, lambda u=f"http://127.0.0.1:{monitor}{path}": dead() or http_ok(u))


def _stop_nodes(nodes: list[subprocess.Popen[bytes]]) -> None:
    for node in nodes:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
    for node in nodes:
        node.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[int], Path]]:
    """Three nodes from deploy/nats/nats.conf; yields their client ports and the secrets folder."""
    secrets = tmp_path / "secrets"
    make_secrets(secrets)
    text = (DEPLOY / "nats" / "nats.conf").read_text()
    assert text.count("store_dir: /data\n") == 1  # the container's volume; each node here has a folder
    for attempt in range(3):
        root = tmp_path / f"try-{attempt}"
        nodes, ports = _start_nodes(root, text, secrets)
        try:
            _wait_healthy(root, nodes, ports)
            break
        except PortTaken:
            _stop_nodes(nodes)
            if attempt == 2:
                raise
        except BaseException:
            _stop_nodes(nodes)
            raise
    try:
        yield [client for client, _c, _m in ports], secrets
    finally:
        _stop_nodes(nodes)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[str]:
    os.chmod(tmp_path, 0o755)
    pg = EmbeddedPostgres(tmp_path / "pg", extra_settings={"fsync": "off"})
    pg.start()
    try:
        yield pg.create_database("quipu")
    finally:
        pg.stop(mode="immediate")


async def _bus_facts(url: str, creds: str) -> tuple[int, int, list[str]]:
    """max_payload the server announces, and the events stream's message count and nodes."""
    nc = await connect_nats(NatsEndpoint(url, creds), allow_reconnect=False)
    try:
        info = await nc.jetstream().stream_info(Subjects().events_stream)
        peers = [info.cluster.leader, *(r.name for r in info.cluster.replicas or [])] if info.cluster else []
        return nc.max_payload, info.state.messages, [p for p in peers if p]
    finally:
        await nc.close()


def test_the_compose_roles_on_the_three_node_cluster(
    cluster: tuple[list[int], Path], postgres: str, tmp_path: Path
) -> None:
    (first, *_), secrets = cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    env |= make_env(secrets, postgres, first)
    key = subprocess.run(
        [*QUIPU, "keys", "create", "--tenant", "acme", "--scopes", "read,write,admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log = (tmp_path / "roles.log").open("ab")
    api_ports, health_ports = [free_port(), free_port()], [free_port() for _ in range(4)]
    commands = [["api", "--port", str(p)] for p in api_ports]
    commands += [["relay", "--health-port", str(p)] for p in health_ports[:2]]
    commands += [["projector", "run", "--health-port", str(p)] for p in health_ports[2:]]
    procs = [subprocess.Popen([*QUIPU, *c], env=env, stdout=log, stderr=subprocess.STDOUT) for c in commands]
    try:
        for port in api_ports + health_ports:
            wait_for(f"/ready on {port}", lambda p=port: http_ok(f"http://127.0.0.1:{p}/ready"))
        headers = {"Authorization": f"Bearer {key}"}
        for i, port in enumerate(api_ports * 3):
            created = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/workflows",
                json={"name": f"wf-{i}", "definition": DEFINITION},
                headers=headers,
                timeout=30,
            )
            assert created.status_code == 201, created.text

        def listed() -> bool:
            page = httpx.get(f"http://127.0.0.1:{api_ports[1]}/api/v1/workflows", headers=headers, timeout=10)
            return bool(page.json()["total"] == 6)

        wait_for("the read model to hold all six workflows", listed)
        creds = (secrets / "operator.creds").read_text()
        max_payload, messages, peers = asyncio.run(_bus_facts(f"nats://127.0.0.1:{first}", creds))
        assert max_payload == 8 * 1024 * 1024
        assert messages >= 6
        assert sorted(peers) == ["nats-1", "nats-2", "nats-3"]  # QUIPU_NATS_REPLICAS=3, as compose sets it
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def make_env(secrets: Path, database_url: str, nats_port: int) -> dict[str, str]:
    """What deploy/compose.yaml gives a Quipu container, with the addresses of this machine."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    env = dict(compose["x-quipu"]["environment"])
    env |= {k: v for k, v in make_secrets_env(secrets).items() if k.startswith("QUIPU_")}
    env["QUIPU_DATABASE_URL"] = database_url  # compose's names "postgres" and "nats" are the
    env["QUIPU_NATS_URL"] = f"nats://127.0.0.1:{nats_port}"  # containers' own network
    env["QUIPU_NATS_SIGNING_KEY_FILE"] = str(secrets / "nats-signing.nk")
    env["QUIPU_LOG_LEVEL"] = "warning"
    return env


def make_secrets_env(folder: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in (folder / "quipu.env").read_text().splitlines())
