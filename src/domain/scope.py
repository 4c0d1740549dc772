"""The scope aggregate (CELLSTATE reference): a partition of a trajectory's context window.

A scope belongs to one trajectory and may nest in a parent scope of the same trajectory.
It has a token budget; every turn recorded in it is accounted for on the scope's own
stream by a ``scope.turn_appended`` event that reserves the turn's sequence number and
adds its tokens. That makes the scope's stream the serialisation point for its turns: two
concurrent turns both try to append the scope's next version, the store's unique
(stream, version) key lets exactly one win, and the other decides again on the fresh
scope (so sequences never repeat and ``tokens_used`` never loses an update).

The budget is a hard limit: a turn that would take ``tokens_used`` past ``token_budget``
is refused (409) and recorded nowhere, and the budget cannot be lowered below what is
already used, so ``tokens_used <= token_budget`` always holds. A closed scope takes no
new turns and no checkpoints; delete appends a tombstone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from domain.events import DomainEvent, event_kind
from domain.trajectory import FINAL, Trajectory

TokenBudget = Annotated[int, msgspec.Meta(ge=1, le=2_147_483_647)]
ContextState = Annotated[bytes, msgspec.Meta(max_length=262_144)]


class ScopeCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """The latest checkpoint of a scope: serialised context state the agent can restore."""

    context_state: bytes
    recoverable: bool
    event_id: UUID
    created_at: datetime


@event_kind("scope.opened", 0xD101)
class ScopeOpened(DomainEvent, frozen=True, kw_only=True):
    trajectory_id: UUID
    name: str
    token_budget: int
    parent_scope_id: UUID | None = None
    purpose: str | None = None
    metadata: dict[str, Any] = {}
    request_hash: str | None = None


@event_kind("scope.updated", 0xD102)
class ScopeUpdated(DomainEvent, frozen=True, kw_only=True):
    """The new name, purpose, budget and metadata (all of them, so a reader needs no merge)."""

    name: str
    token_budget: int
    purpose: str | None = None
    metadata: dict[str, Any] = {}


@event_kind("scope.checkpointed", 0xD103)
class ScopeCheckpointed(DomainEvent, frozen=True, kw_only=True):
    context_state: bytes
    recoverable: bool


@event_kind("scope.turn_appended", 0xD104)
class TurnAppended(DomainEvent, frozen=True, kw_only=True):
    """A turn took ``sequence`` and ``token_count`` tokens; ``tokens_used`` is the new total."""

    turn_id: UUID
    sequence: int
    token_count: int
    tokens_used: int


@event_kind("scope.closed", 0xD105)
class ScopeClosed(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("scope.deleted", 0xD106)
class ScopeDeleted(DomainEvent, frozen=True, kw_only=True):
    pass


@aggregate_root("scope")
class Scope(Aggregate):
    trajectory_id: UUID
    parent_scope_id: UUID | None
    name: str
    purpose: str | None
    token_budget: int
    tokens_used: int
    metadata: dict[str, Any]
    is_active: bool
    closed_at: datetime | None
    checkpoint: ScopeCheckpoint | None
    sequences: set[int]
    last_sequence: int
    turn_count: int
    deleted: bool
    request_hash: str | None

    @classmethod
    def open(
        cls,
        ctx: CommandContext,
        *,
        scope_id: UUID,
        trajectory: Trajectory,
        name: str,
        token_budget: int,
        purpose: str | None = None,
        metadata: dict[str, Any] | None = None,
        parent: Scope | None = None,
        request_hash: str | None = None,
    ) -> Scope:
        """Open a scope in a live, unfinished trajectory, optionally inside an open parent
        scope of the same trajectory. Its first event names the trajectory's (and the
        parent scope's) latest event as causes."""
        if trajectory.tenant_id != ctx.tenant_id or (parent is not None and parent.tenant_id != ctx.tenant_id):
            raise NotFound("trajectory or parent scope not found")
        trajectory.require_live()
        if trajectory.status in FINAL:
            raise Conflict(f"trajectory {trajectory.id} is {trajectory.status}; it takes no new scopes")
        assert trajectory.last_event_id is not None
        causes = (trajectory.last_event_id, *ctx.caused_by)
        if parent is not None:
            parent.require_live()
            if parent.trajectory_id != trajectory.id:
                problem = FieldProblem("parent_scope_id", "the parent scope belongs to another trajectory", "mismatch")
                raise ValidationFailed([problem])
            parent.require_open("take nested scopes")
            assert parent.last_event_id is not None
            causes = (trajectory.last_event_id, parent.last_event_id, *ctx.caused_by)
        return cls._create(
            ScopeOpened,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=scope_id,
            correlation_id=trajectory.root_trajectory_id,
            trajectory_id=trajectory.id,
            parent_scope_id=parent.id if parent else None,
            name=name,
            purpose=purpose,
            token_budget=token_budget,
            metadata=metadata or {},
            request_hash=request_hash,
        )

    def update(
        self,
        ctx: CommandContext,
        *,
        name: str | None = None,
        purpose: str | None = None,
        token_budget: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Change what is given (None: unchanged); the budget never drops below the use."""
        self.require_live()
        if token_budget is not None and token_budget < self.tokens_used:
            raise Conflict(f"scope {self.id} has used {self.tokens_used} tokens; the budget cannot go below that")
        if name is None and purpose is None and token_budget is None and metadata is None:
            return
        self._trigger(
            ScopeUpdated,
            ctx,
            name=self.name if name is None else name,
            purpose=self.purpose if purpose is None else purpose,
            token_budget=self.token_budget if token_budget is None else token_budget,
            metadata=self.metadata if metadata is None else metadata,
        )

    def take_checkpoint(self, ctx: CommandContext, *, context_state: bytes, recoverable: bool) -> ScopeCheckpoint:
        self.require_live()
        self.require_open("take checkpoints")
        self._trigger(ScopeCheckpointed, ctx, context_state=context_state, recoverable=recoverable)
        assert self.checkpoint is not None
        return self.checkpoint

    def append_turn(self, ctx: CommandContext, *, turn_id: UUID, sequence: int | None, token_count: int) -> int:
        """Reserve the turn's sequence (the next one when omitted) and add its tokens.
        Returns the sequence. 409 for a closed scope, a taken sequence or the budget."""
        self.require_live()
        self.require_open("take new turns")
        number = self.last_sequence + 1 if sequence is None else sequence
        if number in self.sequences:
            raise Conflict(f"sequence {number} is already taken in scope {self.id}")
        if self.tokens_used + token_count > self.token_budget:
            raise Conflict(
                f"the turn's {token_count} tokens exceed scope {self.id}'s budget:"
                f" {self.tokens_used} of {self.token_budget} used"
            )
        self._trigger(
            TurnAppended,
            ctx,
            turn_id=turn_id,
            sequence=number,
            token_count=token_count,
            tokens_used=self.tokens_used + token_count,
        )
        return number

    def close(self, ctx: CommandContext) -> None:
        self.require_live()
        self.require_open("be closed again")
        self._trigger(ScopeClosed, ctx)

    def delete(self, ctx: CommandContext) -> None:
        self.require_live()
        self._trigger(ScopeDeleted, ctx)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"scope {self.id} was deleted")

    def require_open(self, what: str) -> None:
        if not self.is_active:
            raise Conflict(f"scope {self.id} is closed; it cannot {what}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, ScopeOpened):
            self.trajectory_id = event.trajectory_id
            self.parent_scope_id = event.parent_scope_id
            self.name = event.name
            self.purpose = event.purpose
            self.token_budget = event.token_budget
            self.tokens_used = 0
            self.metadata = event.metadata
            self.is_active = True
            self.closed_at = None
            self.checkpoint = None
            self.sequences = set()
            self.last_sequence = 0
            self.turn_count = 0
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, ScopeUpdated):
            self.name = event.name
            self.purpose = event.purpose
            self.token_budget = event.token_budget
            self.metadata = event.metadata
        elif isinstance(event, ScopeCheckpointed):
            self.checkpoint = ScopeCheckpoint(
                context_state=event.context_state,
                recoverable=event.recoverable,
                event_id=event.event_id,
                created_at=event.timestamp,
            )
        elif isinstance(event, TurnAppended):
            self.sequences.add(event.sequence)
            self.last_sequence = max(self.last_sequence, event.sequence)
            self.tokens_used = event.tokens_used
            self.turn_count += 1
        elif isinstance(event, ScopeClosed):
            self.is_active = False
            self.closed_at = event.timestamp
        elif isinstance(event, ScopeDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Scope cannot apply {type(event).__name__}")
