"""Application service for an agent's working memory: trajectories, scopes and turns.

Load, decide, save, as everywhere. Creates are idempotent by ``Idempotency-Key`` (the key
decides the new stream's id, see ``commands.idempotency``). Saves that lose a race on a
stream (a scope taking turns while it is closed, edited or given another turn) are
decided again on the fresh state, so the aggregate's guards always judge the latest
state; only a stream that keeps changing ends in 409.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict, PreconditionFailed
from commands.idempotency import idempotent_id, replayed, request_hash
from commands.node_link import running_node_event
from commands.store import EventStore
from domain.aggregate import Aggregate, CommandContext
from domain.errors import NotFound
from domain.ids import uuid7
from domain.scope import Scope
from domain.trajectory import Trajectory
from domain.turn import Turn

# Enough for every writer of a busy scope to get through: each round lets one win.
ATTEMPTS = 64

_A = TypeVar("_A", Trajectory, Scope, Turn)
Decide = Callable[[UUID, str | None, CommandContext], tuple[_A, tuple[Aggregate, ...]]]


@dataclass(frozen=True)
class TrajectoryInput:
    name: str
    description: str | None = None
    agent_id: UUID | None = None
    parent_trajectory_id: UUID | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class ScopeInput:
    trajectory_id: UUID
    name: str
    token_budget: int
    parent_scope_id: UUID | None = None
    purpose: str | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class TurnInput:
    scope_id: UUID
    role: str
    content: str
    sequence: int | None = None
    token_count: int = 0
    tool_calls: dict[str, Any] | list[Any] | None = None
    tool_results: dict[str, Any] | list[Any] | None = None
    metadata: dict[str, Any] | None = None
    execution_id: UUID | None = None
    node_id: str | None = None


class MemorySessionService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    # -- creates ----------------------------------------------------------------------
    def create_trajectory(
        self, ctx: CommandContext, data: TrajectoryInput, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[Trajectory, bool]:
        """A trajectory, top-level or a sub-task of ``parent_trajectory_id``."""

        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[Trajectory, tuple[()]]:
            parent = (
                self.get(Trajectory, ctx.tenant_id, data.parent_trajectory_id) if data.parent_trajectory_id else None
            )
            trajectory = Trajectory.create(
                checked,
                trajectory_id=new_id,
                name=data.name,
                description=data.description,
                agent_id=data.agent_id,
                metadata=data.metadata,
                parent=parent,
                request_hash=body_hash,
            )
            return trajectory, ()

        return self._create(ctx, Trajectory, decide, idempotency_key, raw_body)

    def open_scope(
        self, ctx: CommandContext, data: ScopeInput, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[Scope, bool]:
        """A scope in a trajectory, optionally nested in a parent scope."""

        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[Scope, tuple[()]]:
            trajectory = self.get(Trajectory, ctx.tenant_id, data.trajectory_id)
            parent = self.get(Scope, ctx.tenant_id, data.parent_scope_id) if data.parent_scope_id else None
            scope = Scope.open(
                checked,
                scope_id=new_id,
                trajectory=trajectory,
                name=data.name,
                token_budget=data.token_budget,
                purpose=data.purpose,
                metadata=data.metadata,
                parent=parent,
                request_hash=body_hash,
            )
            return scope, ()

        return self._create(ctx, Scope, decide, idempotency_key, raw_body)

    def record_turn(
        self, ctx: CommandContext, data: TurnInput, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[Turn, bool]:
        """A turn in a scope. The scope's ``turn_appended`` and the turn's ``recorded`` are
        saved in one transaction; a concurrent turn makes the scope's append collide and
        this one is decided again (next sequence, fresh budget). With ``execution_id`` and
        ``node_id`` the turn names that running node's event as a parent (409 otherwise)."""

        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[Turn, tuple[Scope]]:
            causes = checked.caused_by
            if data.execution_id is not None and data.node_id is not None:
                node_event = running_node_event(self._store, ctx.tenant_id, data.execution_id, data.node_id)
                causes = (node_event, *causes)
            scope = self.get(Scope, ctx.tenant_id, data.scope_id)
            turn = Turn.record(
                CommandContext(ctx.tenant_id, ctx.actor, causes),
                scope,
                turn_id=new_id,
                role=data.role,
                content=data.content,
                sequence=data.sequence,
                token_count=data.token_count,
                tool_calls=data.tool_calls,
                tool_results=data.tool_results,
                metadata=data.metadata,
                execution_id=data.execution_id,
                node_id=data.node_id,
                request_hash=body_hash,
            )
            return turn, (scope,)  # the scope's event first: the turn's event names it

        return self._create(ctx, Turn, decide, idempotency_key, raw_body)

    def _create(
        self,
        ctx: CommandContext,
        cls: type[_A],
        decide: Decide[_A],
        idempotency_key: str | None,
        raw_body: Any,
    ) -> tuple[_A, bool]:
        """Returns (the resource as first created, created_now)."""
        body_hash = request_hash(raw_body) if idempotency_key else None
        new_id = idempotent_id(ctx.tenant_id, cls.CATEGORY, idempotency_key) if idempotency_key else uuid7()
        if idempotency_key and (first := self._replay(cls, new_id, ctx.tenant_id, body_hash)) is not None:
            return first, False
        checked = CommandContext(ctx.tenant_id, ctx.actor, check_causes(self._store, ctx.tenant_id, ctx.caused_by))
        for attempt in range(1, ATTEMPTS + 1):
            created, before = decide(new_id, body_hash, checked)
            try:
                self._store.save_all(*before, created)
            except ConcurrencyConflict:
                # A concurrent request with the same key won: answer as it did.
                if idempotency_key and (first := self._replay(cls, new_id, ctx.tenant_id, body_hash)) is not None:
                    return first, False
                if attempt == ATTEMPTS:
                    raise
                continue
            return created, True
        raise AssertionError("unreachable")

    def _replay(self, cls: type[_A], new_id: UUID, tenant_id: str, body_hash: str | None) -> _A | None:
        # Version 1 is exactly what the first request answered.
        return replayed(self._store, cls, new_id, tenant_id, body_hash, version=1)

    # -- reads and edits ----------------------------------------------------------------
    def get(self, cls: type[_A], tenant_id: str, aggregate_id: UUID) -> _A:
        """The live resource from the log (no lag); deleted or another tenant's -> 404."""
        found = self._store.load(cls, aggregate_id, tenant_id)
        if found.deleted:
            raise NotFound(f"{cls.CATEGORY} {aggregate_id} was deleted")
        return found

    def edit(
        self,
        ctx: CommandContext,
        cls: type[_A],
        aggregate_id: UUID,
        change: Callable[[_A, CommandContext], object],
        *,
        expected_version: int | None = None,
    ) -> _A:
        """Load, check ``If-Match`` and the named causes, let ``change`` decide, save. A
        save that lost a race is decided again, unless ``If-Match`` pinned the version."""
        causes = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        checked = CommandContext(ctx.tenant_id, ctx.actor, causes)
        for attempt in range(1, ATTEMPTS + 1):
            found = self.get(cls, ctx.tenant_id, aggregate_id)
            if expected_version is not None and expected_version != found.version:
                raise PreconditionFailed(f"If-Match expected version {expected_version}, current is {found.version}")
            change(found, checked)
            try:
                self._store.save_all(found)
            except ConcurrencyConflict:
                if expected_version is not None or attempt == ATTEMPTS:
                    raise
                continue
            return found
        raise AssertionError("unreachable")
