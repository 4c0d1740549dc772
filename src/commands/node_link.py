"""Linking what a running execution node produced (turns, artifacts, notes, telemetry) to
that node in the event DAG."""

from __future__ import annotations

from uuid import UUID

from commands.store import EventStore
from domain.errors import Conflict
from domain.execution import Execution
from domain.execution_status import WORKING


def running_node_event(store: EventStore, tenant_id: str, execution_id: UUID, node_id: str) -> UUID:
    """The event of the node's current attempt (its start, else its scheduling), to name as
    a parent. 404 for an unknown execution or node; 409 when the node is not running."""
    execution = store.load(Execution, execution_id, tenant_id)
    execution.node(node_id)
    if execution.nodes.get(node_id) not in WORKING:
        raise Conflict(f"node '{node_id}' is not running; only a running node can produce memory")
    return execution.started_events.get(node_id) or execution.scheduled_events[node_id]
