"""The summarization request aggregate (CELLSTATE reference): one summary to be written.

A request is recorded when a policy's trigger fires (or when asked, for a ``manual``
trigger). It fixes what is to be summarized - its sources, chosen from the log when it is
recorded - so every reader agrees on them; a worker of the policy's agent type writes the
summary, and Quipu records it as a note at the target level whose first event names the
request as its cause.

Status: ``pending`` -> ``in_progress`` (a worker took it) -> ``completed`` or ``failed``;
a pending request may also fail (be given up) directly. Completed and failed are final;
every other change - the same status again included - is a 409.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind
from domain.summarization_policy import SummarizationPolicy
from domain.summarization_triggers import Crossing

RequestStatus = Literal["pending", "in_progress", "completed", "failed"]
SourceType = Literal["turn", "note"]
_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/summarization-request")
_NEXT: dict[str, frozenset[str]] = {
    "pending": frozenset({"in_progress", "failed"}),
    "in_progress": frozenset({"completed", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
}


class SourceRef(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a summary is written from."""

    entity_type: SourceType
    entity_id: UUID


def request_id_for(tenant_id: str, policy_id: UUID, scope_id: UUID | None, key: str) -> UUID:
    """A crossing's request id: the same crossing decided twice collides in the store."""
    return uuid5(_NAMESPACE, f"{tenant_id}:{policy_id}:{scope_id or '-'}:{key}")


@event_kind("summarization_request.created", 0xC801)
class RequestCreated(DomainEvent, frozen=True, kw_only=True):
    summarization_policy_id: UUID
    trajectory_id: UUID | None = None
    scope_id: UUID | None = None
    source_level: str
    target_level: str
    max_sources: int
    create_edges: bool
    agent_type: str
    trigger: Any  # the trigger that fired, in the reference's spelling
    crossing: str  # which crossing of it (see domain.summarization_triggers)
    sources: list[SourceRef] = []
    metadata: Any = None
    requested_by: UUID | None = None


@event_kind("summarization_request.started", 0xC802)
class RequestStarted(DomainEvent, frozen=True, kw_only=True):
    worker: str | None = None


@event_kind("summarization_request.completed", 0xC803)
class RequestCompleted(DomainEvent, frozen=True, kw_only=True):
    note_id: UUID | None = None  # None: marked completed by hand, without a summary from Quipu
    edge_ids: list[UUID] = []


@event_kind("summarization_request.failed", 0xC804)
class RequestFailed(DomainEvent, frozen=True, kw_only=True):
    error: str | None = None


@aggregate_root("summarization_request")
class SummarizationRequest(Aggregate):
    summarization_policy_id: UUID
    trajectory_id: UUID | None
    scope_id: UUID | None
    source_level: str
    target_level: str
    max_sources: int
    create_edges: bool
    agent_type: str
    trigger: Any
    crossing: str
    sources: list[SourceRef]
    metadata: Any
    requested_by: UUID | None
    status: str
    requested_at: datetime
    completed_at: datetime | None
    note_id: UUID | None
    edge_ids: list[UUID]
    error: str | None

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        policy: SummarizationPolicy,
        crossing: Crossing,
        *,
        trajectory_id: UUID | None,
        scope_id: UUID | None,
        sources: list[SourceRef],
        requested_by: UUID | None = None,
    ) -> SummarizationRequest:
        """A request of ``policy`` for one crossing; its first event names the event that
        fired the trigger (in ``ctx.caused_by``) and the policy's latest event."""
        policy.require_live()
        assert policy.last_event_id is not None
        return cls._create(
            RequestCreated,
            CommandContext(ctx.tenant_id, ctx.actor, (*ctx.caused_by, policy.last_event_id)),
            aggregate_id=request_id_for(ctx.tenant_id, policy.id, scope_id, crossing.key),
            correlation_id=policy.correlation_id,
            summarization_policy_id=policy.id,
            trajectory_id=trajectory_id,
            scope_id=scope_id,
            source_level=policy.source_level,
            target_level=policy.target_level,
            max_sources=policy.max_sources,
            create_edges=policy.create_edges,
            agent_type=policy.agent_type,
            trigger=crossing.trigger.wire(),
            crossing=crossing.key,
            sources=sources[-policy.max_sources :],
            metadata=policy.metadata,
            requested_by=requested_by,
        )

    def change_status(self, ctx: CommandContext, status: str, *, error: str | None = None) -> None:
        """A status change by hand (PATCH): 409 for every change the state machine lacks."""
        if status == self.status:
            raise Conflict(f"summarization request {self.id} is already {status}")
        if status not in _NEXT[self.status]:
            raise Conflict(f"summarization request {self.id} is {self.status}; it cannot become {status}")
        if status == "in_progress":
            self._trigger(RequestStarted, ctx)
        elif status == "completed":
            self._trigger(RequestCompleted, ctx)
        elif status == "failed":
            self._trigger(RequestFailed, ctx, error=error)

    def take(self, ctx: CommandContext, worker: str | None) -> None:
        """A worker has it (its heartbeat): pending -> in_progress once; later heartbeats
        change nothing; 409 once it is over, so the worker stops."""
        if self.status == "pending":
            self._trigger(RequestStarted, ctx, worker=worker)
        elif self.status != "in_progress":
            raise Conflict(f"summarization request {self.id} is {self.status}")

    def complete(self, ctx: CommandContext, *, note_id: UUID, edge_ids: list[UUID]) -> None:
        """The summary is written: ``ctx.caused_by`` names the note's first event."""
        self.change_status_guard("completed")
        self._trigger(RequestCompleted, ctx, note_id=note_id, edge_ids=edge_ids)

    def change_status_guard(self, status: str) -> None:
        if status not in _NEXT[self.status]:
            raise Conflict(f"summarization request {self.id} is {self.status}; it cannot become {status}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, RequestCreated):
            self.summarization_policy_id = event.summarization_policy_id
            self.trajectory_id = event.trajectory_id
            self.scope_id = event.scope_id
            self.source_level = event.source_level
            self.target_level = event.target_level
            self.max_sources = event.max_sources
            self.create_edges = event.create_edges
            self.agent_type = event.agent_type
            self.trigger = event.trigger
            self.crossing = event.crossing
            self.sources = list(event.sources)
            self.metadata = event.metadata
            self.requested_by = event.requested_by
            self.status = "pending"
            self.requested_at = event.timestamp
            self.completed_at = None
            self.note_id = None
            self.edge_ids = []
            self.error = None
        elif isinstance(event, RequestStarted):
            self.status = "in_progress"
        elif isinstance(event, RequestCompleted):
            self.status = "completed"
            self.completed_at = event.timestamp
            self.note_id = event.note_id
            self.edge_ids = list(event.edge_ids)
        elif isinstance(event, RequestFailed):
            self.status = "failed"
            self.completed_at = event.timestamp
            self.error = event.error
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"SummarizationRequest cannot apply {type(event).__name__}")
