"""Workflow definitions the explorer's browser tests run on the ``echo`` worker
(see worker_process.py: a node's ``config`` says what it outputs, how long it takes, and
how many attempts fail)."""

from __future__ import annotations

import itertools
from typing import Any


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """start -> nodes... -> end, one after the other."""
    every = [{"id": "start", "type": "start"}, *nodes, {"id": "end", "type": "end"}]
    ids = [n["id"] for n in every]
    return {"nodes": every, "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)]}


def echo(node_id: str, **config: Any) -> dict[str, Any]:
    """A task node of the echo worker; ``config``: output, delay, fail_attempts."""
    return {"id": node_id, "agent_type": "echo", "config": config}
