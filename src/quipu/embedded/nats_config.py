"""What an embedded nats-server is told in its config file: payload limit, operator-mode
authentication, and (for a cluster node) its name and routes to its peers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bus.nats_auth import OperatorKeys
from quipu.embedded.process import url_host
from quipu.private_files import write_private

__all__ = ["ClusterNode", "config_text", "operator_keys"]


def operator_keys(path: Path) -> OperatorKeys:
    """The NATS operator, accounts and signing key: generated at first start, then kept 0600."""
    if path.exists():
        return OperatorKeys(**json.loads(path.read_text()))
    keys = OperatorKeys.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(vars(keys)))
    return keys


@dataclass(frozen=True)
class ClusterNode:
    """One server's place in a local JetStream cluster.

    Routes are authenticated (``route_user``/``route_password``): an open route port would let
    any local process join the cluster as a server and so see every account's messages.
    """

    cluster: str
    server_name: str
    host: str
    route_port: int
    peer_route_ports: tuple[int, ...]
    route_user: str
    route_password: str

    def text(self) -> str:
        auth = f"{self.route_user}:{self.route_password}@"
        routes = ", ".join(f'"nats-route://{auth}{url_host(self.host)}:{port}"' for port in self.peer_route_ports)
        return (
            f'server_name: "{self.server_name}"\n'
            "cluster {\n"
            f'  name: "{self.cluster}"\n'
            f'  listen: "{url_host(self.host)}:{self.route_port}"\n'
            f'  authorization {{ user: "{self.route_user}", password: "{self.route_password}" }}\n'
            f"  routes: [{routes}]\n"
            "}\n"
        )


def config_text(*, max_payload: int, keys: OperatorKeys | None, cluster: ClusterNode | None) -> str:
    """The whole nats.conf (the command line carries ports, JetStream and the store dir)."""
    text = f"max_payload: {max_payload}\n"
    if keys is not None:
        # The memory resolver with the accounts preloaded: every node of a cluster gets the
        # same operator and accounts from the same keys, so no node depends on another for them.
        text += keys.server_config()
    if cluster is not None:
        text += cluster.text()
    return text
