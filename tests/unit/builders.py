"""Builders shared by the execution unit tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from domain.aggregate import CommandContext
from domain.events import DomainEvent
from domain.execution import Execution
from domain.hashing import canonical_encoding
from domain.workflow_graph import Edge, Node, WorkflowDefinition

CTX = CommandContext("acme", "worker")
CLOCK = CommandContext("acme", "system:timer")
TICK = timedelta(microseconds=1)


def flow(*nodes: Node, edges: str) -> WorkflowDefinition:
    """Nodes plus ``"a>b b>c"`` edges; ``start`` and ``end`` are added."""
    pairs = [pair.split(">") for pair in edges.split()]
    ends = [Node(id="start", type="start"), Node(id="end", type="end")]
    return WorkflowDefinition(nodes=[*ends, *nodes], edges=[Edge(source=s, target=t) for s, t in pairs])


def replay(events: list[DomainEvent]) -> Execution:
    """Rebuild from the encoded events, as the event store would."""
    rebuilt = None
    for e in events:
        rebuilt = msgspec.json.decode(canonical_encoding(e), type=type(e)).mutate(rebuilt)
    assert isinstance(rebuilt, Execution)
    return rebuilt


def view(ex: Execution) -> tuple[Any, ...]:
    """Everything replay must reproduce."""
    return (ex.status, ex.error, ex.nodes, ex.attempts, ex.state, ex.approvals, ex.timers(), ex.version)
