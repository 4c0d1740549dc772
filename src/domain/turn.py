"""The turn aggregate (CELLSTATE reference): one entry of a scope's conversation buffer.

Each turn is a stream of its own (recorded, maybe updated, maybe deleted), so editing or
deleting one turn never contends with the turns being added to its scope. What must be
consistent across turns - the sequence number and the scope's ``tokens_used`` - is
decided by the scope (``Scope.append_turn``), whose ``scope.turn_appended`` event is
saved in the same transaction as the turn's ``turn.recorded``. Concurrent turns in one
scope therefore race for the scope's next version; the loser is decided again (see
``domain.scope``), so sequences stay unique without a lock.

A turn's first event has as parents the scope's ``turn_appended`` event (so the turn sits
under its scope, and through it its trajectory, in the DAG), plus, when a running
execution node produced it, that node's event, plus any ``caused_by`` the caller named.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, FieldProblem, ValidationFailed
from domain.events import DomainEvent, event_kind
from domain.scope import Scope

TurnRole = Literal["user", "assistant", "system", "tool"]
Content = Annotated[str, msgspec.Meta(max_length=200_000)]
TokenCount = Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)]
Sequence = Annotated[int, msgspec.Meta(ge=0, le=2_147_483_647)]
# Tool calls and results: a JSON object (the CELLSTATE reference) or a list of calls (OpenAI-style).
ToolData = (
    Annotated[dict[str, Any], msgspec.Meta(max_length=1000)] | Annotated[list[Any], msgspec.Meta(max_length=1000)]
)
NodeId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


@event_kind("turn.recorded", 0xD201)
class TurnRecorded(DomainEvent, frozen=True, kw_only=True):
    scope_id: UUID
    trajectory_id: UUID
    role: str
    content: str
    sequence: int
    token_count: int = 0
    tool_calls: dict[str, Any] | list[Any] | None = None
    tool_results: dict[str, Any] | list[Any] | None = None
    metadata: dict[str, Any] = {}
    execution_id: UUID | None = None
    node_id: str | None = None
    request_hash: str | None = None


@event_kind("turn.updated", 0xD202)
class TurnUpdated(DomainEvent, frozen=True, kw_only=True):
    """The new content, tool data and metadata (all of them, so a reader needs no merge).
    Role, sequence and token count are facts of the recording and never change."""

    content: str
    tool_calls: dict[str, Any] | list[Any] | None = None
    tool_results: dict[str, Any] | list[Any] | None = None
    metadata: dict[str, Any] = {}


@event_kind("turn.deleted", 0xD203)
class TurnDeleted(DomainEvent, frozen=True, kw_only=True):
    """A tombstone. The tokens stay counted in the scope: they were spent."""


@aggregate_root("turn")
class Turn(Aggregate):
    scope_id: UUID
    trajectory_id: UUID
    role: str
    content: str
    sequence: int
    token_count: int
    tool_calls: dict[str, Any] | list[Any] | None
    tool_results: dict[str, Any] | list[Any] | None
    metadata: dict[str, Any]
    execution_id: UUID | None
    node_id: str | None
    deleted: bool
    request_hash: str | None

    @classmethod
    def record(
        cls,
        ctx: CommandContext,
        scope: Scope,
        *,
        turn_id: UUID,
        role: str,
        content: str,
        sequence: int | None = None,
        token_count: int = 0,
        tool_calls: dict[str, Any] | list[Any] | None = None,
        tool_results: dict[str, Any] | list[Any] | None = None,
        metadata: dict[str, Any] | None = None,
        execution_id: UUID | None = None,
        node_id: str | None = None,
        request_hash: str | None = None,
    ) -> Turn:
        """Record a turn in ``scope``: the scope takes its sequence and tokens first (its
        guards may refuse), then the turn's stream starts. Save both together."""
        if (execution_id is None) != (node_id is None):
            raise ValidationFailed(
                [FieldProblem("node_id" if node_id is None else "execution_id", "give both or neither", "required")]
            )
        number = scope.append_turn(
            CommandContext(ctx.tenant_id, ctx.actor), turn_id=turn_id, sequence=sequence, token_count=token_count
        )
        assert scope.last_event_id is not None
        return cls._create(
            TurnRecorded,
            CommandContext(ctx.tenant_id, ctx.actor, (scope.last_event_id, *ctx.caused_by)),
            aggregate_id=turn_id,
            correlation_id=scope.correlation_id,
            scope_id=scope.id,
            trajectory_id=scope.trajectory_id,
            role=role,
            content=content,
            sequence=number,
            token_count=token_count,
            tool_calls=tool_calls,
            tool_results=tool_results,
            metadata=metadata or {},
            execution_id=execution_id,
            node_id=node_id,
            request_hash=request_hash,
        )

    def update(
        self,
        ctx: CommandContext,
        *,
        content: str | None = None,
        tool_calls: dict[str, Any] | list[Any] | None = None,
        tool_results: dict[str, Any] | list[Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Change what is given (None: unchanged)."""
        self.require_live()
        if content is None and tool_calls is None and tool_results is None and metadata is None:
            return
        self._trigger(
            TurnUpdated,
            ctx,
            content=self.content if content is None else content,
            tool_calls=self.tool_calls if tool_calls is None else tool_calls,
            tool_results=self.tool_results if tool_results is None else tool_results,
            metadata=self.metadata if metadata is None else metadata,
        )

    def delete(self, ctx: CommandContext) -> None:
        self.require_live()
        self._trigger(TurnDeleted, ctx)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"turn {self.id} was deleted")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, TurnRecorded):
            self.scope_id = event.scope_id
            self.trajectory_id = event.trajectory_id
            self.role = event.role
            self.content = event.content
            self.sequence = event.sequence
            self.token_count = event.token_count
            self.tool_calls = event.tool_calls
            self.tool_results = event.tool_results
            self.metadata = event.metadata
            self.execution_id = event.execution_id
            self.node_id = event.node_id
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, TurnUpdated):
            self.content = event.content
            self.tool_calls = event.tool_calls
            self.tool_results = event.tool_results
            self.metadata = event.metadata
        elif isinstance(event, TurnDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Turn cannot apply {type(event).__name__}")
