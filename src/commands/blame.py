"""Blame a part of a run's state on the event that last set it (``domain.blame``).

The run's events are read once from the write side (never a read model, invariant 5 in
docs/architecture.md) and applied one by one, so each state seen is exactly the one
``GET /executions/{id}/state?as_of=<version>`` answers. The blamed event comes with the
node and the worker report behind it (for a node's completion: the attempt, who reported
it and the worker that took the task) and its causal path from the run's first event
along the event DAG's parent links.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio.to_thread

from commands import forensics
from commands.read_pool import ReadPool
from commands.store import EventStore
from domain.blame import Blamed, last_change, parse_pointer
from domain.envelope import EventEnvelope
from domain.errors import NotFound
from domain.events import DomainEvent
from domain.execution_events import ExecutionStarted, NodeCompleted, NodeScheduled, NodeStarted
from domain.execution_state import ExecutionState


@dataclass(frozen=True)
class NodeReport:
    """The worker report a node's completion records."""

    node_id: str
    attempt: int
    reported_by: str  # the completion's actor: the worker's (or approver's) key
    worker: str | None  # the name the worker gave when it took the task
    scheduled_event_id: UUID | None
    started_event_id: UUID | None


@dataclass(frozen=True)
class Blame:
    execution_id: UUID
    path: str
    blamed: Blamed
    event: EventEnvelope
    node_id: str | None
    report: NodeReport | None
    causal_path: list[EventEnvelope]  # from the run's first event to ``event``, both included


def _states(events: Sequence[DomainEvent]) -> Iterator[tuple[int, Any]]:
    """``(version, state)`` right after each event. The state is replaced, never changed in
    place, by every event that changes it (``domain.execution_apply``), so keeping a
    reference to an earlier one is safe."""
    run: Any = None
    for event in events:
        run = event.mutate(run)
        assert isinstance(run, ExecutionState)
        yield event.originator_version, run.state


def _report(events: Sequence[DomainEvent], completed: NodeCompleted) -> NodeReport:
    before = events[: completed.originator_version - 1]

    def last(kind: type[NodeScheduled] | type[NodeStarted]) -> Any:
        return next(
            (
                e
                for e in reversed(before)
                if isinstance(e, kind) and e.node_id == completed.node_id and e.attempt == completed.attempt
            ),
            None,
        )

    scheduled, started = last(NodeScheduled), last(NodeStarted)
    return NodeReport(
        node_id=completed.node_id,
        attempt=completed.attempt,
        reported_by=completed.actor,
        worker=started.worker if started is not None else None,
        scheduled_event_id=scheduled.event_id if scheduled is not None else None,
        started_event_id=started.event_id if started is not None else None,
    )


class BlameService:
    def __init__(self, pool: ReadPool, store: EventStore) -> None:
        self._pool = pool
        self._store = store

    def _events(self, tenant_id: str, execution_id: UUID) -> list[DomainEvent]:
        events = list(self._store.events_of(execution_id))
        if not events or not isinstance(events[0], ExecutionStarted) or events[0].tenant_id != tenant_id:
            raise NotFound(f"execution {execution_id} not found")
        return events

    async def blame(self, tenant_id: str, execution_id: UUID, pointer: str) -> Blame:
        """404 for an unknown run or a pointer that never had a value; 422 for a bad pointer."""
        tokens = parse_pointer(pointer)

        def replay() -> tuple[list[DomainEvent], Blamed | None]:
            # Reading and applying a whole stream is synchronous and CPU: off the event loop.
            events = self._events(tenant_id, execution_id)
            return events, last_change(_states(events), tokens)

        events, blamed = await anyio.to_thread.run_sync(replay)
        if blamed is None:
            raise NotFound(f"'{pointer}' was never set in execution {execution_id}")
        event = events[blamed.version - 1]
        async with self._pool.connection() as conn:
            envelope = await forensics.get_event(conn, tenant_id, event.event_id)
            path = await forensics.causal_path(conn, tenant_id, events[0].event_id, event.event_id)
        node_id = getattr(event, "node_id", None)
        return Blame(
            execution_id=execution_id,
            path=pointer,
            blamed=blamed,
            event=envelope,
            node_id=node_id if isinstance(node_id, str) else None,
            report=_report(events, event) if isinstance(event, NodeCompleted) else None,
            causal_path=path if path is not None else [envelope],
        )
