"""The trajectory aggregate (CELLSTATE reference): a task an agent works on, with its sub-tasks.

A trajectory may have a parent (a sub-task of it). Every trajectory knows the root of its
tree, and that root is its correlation id, so one task tree is one correlation graph in
the event DAG; a child's first event names the parent's latest event as a cause. Status
moves ``active <-> suspended`` and from either to ``completed`` or ``failed``, which are
final and carry an outcome. Delete appends a tombstone: the history stays, and later
commands are refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from domain.events import DomainEvent, event_kind

# Input limits shared by the memory-session resources (trajectories, scopes, turns).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]
Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]

TrajectoryStatus = Literal["active", "suspended", "completed", "failed"]
FINAL: frozenset[str] = frozenset({"completed", "failed"})


# 0xD001-0xD002 were published for api_key.* (domain.access) before trajectories
# existed; codes never change, so trajectories count from 0xD011.
@event_kind("trajectory.created", 0xD011)
class TrajectoryCreated(DomainEvent, frozen=True, kw_only=True):
    name: str
    root_trajectory_id: UUID
    description: str | None = None
    agent_id: UUID | None = None
    parent_trajectory_id: UUID | None = None
    metadata: dict[str, Any] = {}
    request_hash: str | None = None


@event_kind("trajectory.updated", 0xD012)
class TrajectoryUpdated(DomainEvent, frozen=True, kw_only=True):
    """The new name, description and metadata (all of them, so a reader needs no merge)."""

    name: str
    description: str | None = None
    metadata: dict[str, Any] = {}


@event_kind("trajectory.suspended", 0xD013)
class TrajectorySuspended(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("trajectory.resumed", 0xD014)
class TrajectoryResumed(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("trajectory.completed", 0xD015)
class TrajectoryCompleted(DomainEvent, frozen=True, kw_only=True):
    outcome: dict[str, Any] | None = None


@event_kind("trajectory.failed", 0xD016)
class TrajectoryFailed(DomainEvent, frozen=True, kw_only=True):
    outcome: dict[str, Any] | None = None
    error: str | None = None


@event_kind("trajectory.deleted", 0xD017)
class TrajectoryDeleted(DomainEvent, frozen=True, kw_only=True):
    pass


@aggregate_root("trajectory")
class Trajectory(Aggregate):
    name: str
    description: str | None
    agent_id: UUID | None
    parent_trajectory_id: UUID | None
    root_trajectory_id: UUID
    status: str
    outcome: dict[str, Any] | None
    error: str | None
    metadata: dict[str, Any]
    completed_at: datetime | None
    deleted: bool
    request_hash: str | None

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        *,
        trajectory_id: UUID,
        name: str,
        description: str | None = None,
        agent_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        parent: Trajectory | None = None,
        request_hash: str | None = None,
    ) -> Trajectory:
        """A top-level task, or a sub-task of ``parent`` (which must be live and unfinished)."""
        causes = ctx.caused_by
        root = trajectory_id
        if parent is not None:
            if parent.tenant_id != ctx.tenant_id:
                raise NotFound(f"trajectory {parent.id} not found")
            parent.require_live()
            if parent.status in FINAL:
                raise Conflict(f"trajectory {parent.id} is {parent.status}; it takes no new sub-tasks")
            assert parent.last_event_id is not None
            causes = (parent.last_event_id, *causes)
            root = parent.root_trajectory_id
        return cls._create(
            TrajectoryCreated,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=trajectory_id,
            correlation_id=root,
            name=name,
            description=description,
            agent_id=agent_id,
            parent_trajectory_id=parent.id if parent else None,
            root_trajectory_id=root,
            metadata=metadata or {},
            request_hash=request_hash,
        )

    def update(
        self,
        ctx: CommandContext,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        status: str | None = None,
    ) -> None:
        """Change what is given (None: unchanged). A status change is its own event."""
        self.require_live()
        move = self._transition(status) if status is not None else None
        if name is not None or description is not None or metadata is not None:
            self._trigger(
                TrajectoryUpdated,
                ctx,
                name=self.name if name is None else name,
                description=self.description if description is None else description,
                metadata=self.metadata if metadata is None else metadata,
            )
        if move is not None:
            self._trigger(move, ctx)

    def complete(self, ctx: CommandContext, *, outcome: dict[str, Any] | None = None) -> None:
        self.require_live()
        self._require_unfinished("complete")
        self._trigger(TrajectoryCompleted, ctx, outcome=outcome)

    def fail(self, ctx: CommandContext, *, outcome: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.require_live()
        self._require_unfinished("fail")
        self._trigger(TrajectoryFailed, ctx, outcome=outcome, error=error)

    def delete(self, ctx: CommandContext) -> None:
        self.require_live()
        self._trigger(TrajectoryDeleted, ctx)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"trajectory {self.id} was deleted")

    def _require_unfinished(self, verb: str) -> None:
        if self.status in FINAL:
            raise Conflict(f"trajectory {self.id} is already {self.status}; it cannot {verb}")

    def _transition(self, status: str) -> type[DomainEvent] | None:
        """The event that moves to ``status``; None when already there (and not final)."""
        if self.status in FINAL:
            raise Conflict(f"trajectory {self.id} is {self.status}; its status is final")
        if status == self.status:
            return None
        moves: dict[str, type[DomainEvent]] = {
            "active": TrajectoryResumed,
            "suspended": TrajectorySuspended,
            "completed": TrajectoryCompleted,
            "failed": TrajectoryFailed,
        }
        if status not in moves:
            raise ValidationFailed([FieldProblem("status", f"unknown trajectory status '{status}'", "enum")])
        return moves[status]

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, TrajectoryCreated):
            self.name = event.name
            self.description = event.description
            self.agent_id = event.agent_id
            self.parent_trajectory_id = event.parent_trajectory_id
            self.root_trajectory_id = event.root_trajectory_id
            self.status = "active"
            self.outcome = None
            self.error = None
            self.metadata = event.metadata
            self.completed_at = None
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, TrajectoryUpdated):
            self.name = event.name
            self.description = event.description
            self.metadata = event.metadata
        elif isinstance(event, TrajectorySuspended):
            self.status = "suspended"
        elif isinstance(event, TrajectoryResumed):
            self.status = "active"
        elif isinstance(event, TrajectoryCompleted):
            self.status = "completed"
            self.outcome = event.outcome
            self.completed_at = event.timestamp
        elif isinstance(event, TrajectoryFailed):
            self.status = "failed"
            self.outcome = event.outcome
            self.error = event.error
            self.completed_at = event.timestamp
        elif isinstance(event, TrajectoryDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Trajectory cannot apply {type(event).__name__}")
