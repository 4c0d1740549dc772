"""A local JetStream cluster of embedded nats-servers, for development and fault tests.

Each node has its own data folder (``<data_dir>/n1``, ``n2``, ...: store dir, log, config),
client port and route port; the routes between them are authenticated with a password kept
in ``<data_dir>/cluster.json`` (0600) with the ports, so a restart finds the same cluster at
the same URLs. All nodes share one set of operator keys (``<data_dir>/auth/keys.json``), so a
user minted for one is valid on every node. Clients are given every node's URL.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import structlog

from bus.nats_auth import NatsAuthority
from bus.runtime import NatsEndpoint
from quipu.embedded.nats import DEFAULT_NATS_MAX_PAYLOAD, EmbeddedNats
from quipu.embedded.nats_config import ClusterNode, operator_keys
from quipu.embedded.process import EmbeddedServiceError, free_port
from quipu.private_files import write_private

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["EmbeddedNatsCluster"]

log = structlog.get_logger(__name__)

CLUSTER_NAME = "quipu"
ROUTE_USER = "route"


class EmbeddedNatsCluster:
    """``size`` nats-servers with JetStream, routed to each other on ``host``.

    Args:
        data_dir: Folder of the cluster: ``cluster.json``, ``auth/`` and one folder per node.
        size: Number of nodes (3 tolerates the loss of one).
        host: Address every node listens on; loopback by default.
        timeout: Seconds to wait for each node's readiness.
        auth: Operator-mode authentication, as :class:`EmbeddedNats`.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        size: int = 3,
        host: str = "127.0.0.1",
        timeout: float = 60.0,
        max_payload: int = DEFAULT_NATS_MAX_PAYLOAD,
        auth: bool = True,
    ) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        keys = operator_keys(self.data_dir / "auth" / "keys.json") if auth else None
        layout = self._layout(size, host)
        route_ports = tuple(port for _, port in layout["ports"])
        self.nodes = [
            EmbeddedNats(
                self.data_dir / f"n{index + 1}",
                port=client_port,
                host=host,
                timeout=timeout,
                max_payload=max_payload,
                auth=auth,
                keys=keys,
                cluster=ClusterNode(
                    cluster=CLUSTER_NAME,
                    server_name=f"n{index + 1}",
                    host=host,
                    route_port=route_port,
                    peer_route_ports=tuple(port for port in route_ports if port != route_port),
                    route_user=ROUTE_USER,
                    route_password=layout["route_password"],
                ),
            )
            for index, (client_port, route_port) in enumerate(layout["ports"])
        ]

    def _layout(self, size: int, host: str) -> dict[str, Any]:
        """Ports and route password: chosen at first start, then kept for the same URLs."""
        path = self.data_dir / "cluster.json"
        if path.exists():
            layout: dict[str, Any] = json.loads(path.read_text())
            if len(layout["ports"]) == size:
                return layout
            log.warning("embedded_nats_cluster_resized", was=len(layout["ports"]), now=size)
        layout = {
            "ports": [[free_port(host), free_port(host)] for _ in range(size)],
            "route_password": secrets.token_urlsafe(24),
        }
        write_private(path, json.dumps(layout))
        return layout

    @property
    def urls(self) -> list[str]:
        """Every node's ``nats://HOST:PORT``."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """All nodes' URLs, comma-separated (what QUIPU_NATS_URL takes)."""
        return ",".join(self.urls)

    @property
    def keys_node(self) -> EmbeddedNats:
        """The node whose files (operator credentials, signing key) clients are pointed at."""
        return self.nodes[0]

    @property
    def credentials_path(self) -> Path:
        return self.keys_node.credentials_path

    @property
    def authority(self) -> NatsAuthority | None:
        return self.keys_node.authority

    @property
    def endpoint(self) -> NatsEndpoint:
        """All URLs with the operator's credentials (everything allowed)."""
        return NatsEndpoint(self.url, self.keys_node.endpoint.credentials)

    def env(self) -> dict[str, str]:
        """The environment a separate ``quipu`` process needs to use this cluster."""
        return self.keys_node.env() | {"QUIPU_NATS_URL": self.url}

    def node_named(self, server_name: str) -> EmbeddedNats:
        """The node JetStream knows as ``server_name`` (e.g. a stream's ``cluster.leader``)."""
        for node in self.nodes:
            if node.cluster is not None and node.cluster.server_name == server_name:
                return node
        raise KeyError(server_name)

    def start(self) -> str:
        """Start every node that is not running, then wait for all; return the URLs."""
        # Launch all before waiting for any: a node is healthy only once it has a quorum.
        waiting = [node for node in self.nodes if not node.running]
        for node in waiting:
            node.launch()
        failures = [failure for node in waiting if (failure := node.wait_started()) is not None]
        if failures:
            self.stop()
            raise EmbeddedServiceError("\n\n".join(failures))
        log.info("embedded_nats_cluster_started", nodes=len(self.nodes), urls=self.url)
        return self.url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
