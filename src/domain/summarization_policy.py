"""The summarization policy aggregate (CELLSTATE reference): when to condense memory, and how.

A policy names the abstraction level it reads (``source_level``) and the one it writes
(``target_level``), how many sources one summary takes, whether the summary is linked to
its sources by ``synthesized_from`` edges, the agent type of the workers that write it, and
its triggers (``domain.summarization_triggers``). It applies to one trajectory, or to every
trajectory of its tenant when it names none. Quipu never summarizes: a firing records a
summarization request, which a worker of ``agent_type`` takes as a task.

Notes are counted on the policy's own stream (``note_counted``), which makes "every n-th
note" exact under concurrency: the stream serialises the counting, and a note counted once
is never counted again.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, NotFound
from domain.events import DomainEvent, event_kind
from domain.note import AbstractionLevel
from domain.summarization_triggers import Trigger, parse_triggers
from domain.trajectory import Trajectory

PolicyName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
MAX_SOURCES = 100  # what one summary may take (a note names at most 100 sources)
MaxSources = Annotated[int, msgspec.Meta(ge=0, le=MAX_SOURCES)]  # 0: as many as allowed
AgentType = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
DEFAULT_AGENT_TYPE = "summarizer"
# The counted notes a policy remembers (to count each once, and to hand the newest to a summary).
MAX_REMEMBERED_NOTES = 10_000


class PolicyDraft(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    source_level: AbstractionLevel
    target_level: AbstractionLevel
    max_sources: int
    create_edges: bool
    triggers: list[Any]
    trajectory_id: UUID | None = None
    metadata: Any = None
    agent_type: str = DEFAULT_AGENT_TYPE


@event_kind("summarization_policy.created", 0xC701)
class PolicyCreated(DomainEvent, frozen=True, kw_only=True):
    name: str
    source_level: str
    target_level: str
    max_sources: int
    create_edges: bool
    triggers: list[Any]  # the reference's spelling (``Trigger.wire``)
    trajectory_id: UUID | None = None
    metadata: Any = None
    agent_type: str = DEFAULT_AGENT_TYPE


@event_kind("summarization_policy.deleted", 0xC702)
class PolicyDeleted(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("summarization_policy.note_counted", 0xC703)
class NoteCounted(DomainEvent, frozen=True, kw_only=True):
    note_id: UUID
    notes_counted: int


@aggregate_root("summarization_policy")
class SummarizationPolicy(Aggregate):
    name: str
    source_level: str
    target_level: str
    max_sources: int
    create_edges: bool
    triggers: list[Trigger]
    trajectory_id: UUID | None
    metadata: Any
    agent_type: str
    deleted: bool
    notes_counted: int
    counted_notes: list[UUID]

    @classmethod
    def create(
        cls, ctx: CommandContext, *, policy_id: UUID, draft: PolicyDraft, trajectory: Trajectory | None
    ) -> SummarizationPolicy:
        """A policy, for ``trajectory`` (live, same tenant) or the whole tenant; 422 for a
        trigger the reference does not know."""
        triggers = parse_triggers(draft.triggers)
        causes = ctx.caused_by
        if trajectory is not None:
            if trajectory.tenant_id != ctx.tenant_id:
                raise NotFound(f"trajectory {trajectory.id} not found")
            trajectory.require_live()
            assert trajectory.last_event_id is not None
            causes = (trajectory.last_event_id, *causes)
        return cls._create(
            PolicyCreated,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=policy_id,
            correlation_id=trajectory.root_trajectory_id if trajectory is not None else None,
            name=draft.name,
            source_level=draft.source_level,
            target_level=draft.target_level,
            max_sources=draft.max_sources or MAX_SOURCES,
            create_edges=draft.create_edges,
            triggers=[t.wire() for t in triggers],
            trajectory_id=trajectory.id if trajectory is not None else None,
            metadata=draft.metadata,
            agent_type=draft.agent_type,
        )

    def applies_to(self, trajectory_id: UUID | None) -> bool:
        return not self.deleted and (self.trajectory_id is None or self.trajectory_id == trajectory_id)

    def has(self, kind: str) -> bool:
        return any(t.kind == kind for t in self.triggers)

    def count_note(self, ctx: CommandContext, note_id: UUID) -> int | None:
        """Count a note at the source level (its event is the cause); None if it was counted
        already, so a note decided twice counts once. Returns the new count."""
        self.require_live()
        if note_id in self.counted_notes:
            return None
        self._trigger(NoteCounted, ctx, note_id=note_id, notes_counted=self.notes_counted + 1)
        return self.notes_counted

    def newest_notes(self, n: int) -> list[UUID]:
        return self.counted_notes[-n:]

    def delete(self, ctx: CommandContext) -> None:
        self.require_live()
        self._trigger(PolicyDeleted, ctx)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"summarization policy {self.id} was deleted")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, PolicyCreated):
            self.name = event.name
            self.source_level = event.source_level
            self.target_level = event.target_level
            self.max_sources = event.max_sources
            self.create_edges = event.create_edges
            self.triggers = parse_triggers(event.triggers)
            self.trajectory_id = event.trajectory_id
            self.metadata = event.metadata
            self.agent_type = event.agent_type
            self.deleted = False
            self.notes_counted = 0
            self.counted_notes = []
        elif isinstance(event, PolicyDeleted):
            self.deleted = True
        elif isinstance(event, NoteCounted):
            self.notes_counted = event.notes_counted
            self.counted_notes.append(event.note_id)
            if len(self.counted_notes) > MAX_REMEMBERED_NOTES:
                del self.counted_notes[0]
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"SummarizationPolicy cannot apply {type(event).__name__}")
