"""The typed entity edge (CELLSTATE reference): a relation among two or more memory entities.

An edge is a hyperedge: each participant names an entity (type and id) and its role in
the relation. Participants are fixed at creation - they are what the edge *is*; type,
weight and metadata may change. Participant ids are taken as given (they may name
entities Quipu does not hold, such as agents). Delete appends a tombstone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.artifact import Confidence, ExtractionMethod, Metadata, SourceTurn, check_confidence
from domain.errors import Conflict, FieldProblem, ValidationFailed
from domain.events import DomainEvent, event_kind

EdgeType = Literal[
    "supports", "contradicts", "supersedes", "derived_from", "relates_to", "temporal", "causal",
    "synthesized_from", "grouped", "compared",
]  # fmt: skip
EntityType = Literal[
    "trajectory", "scope", "artifact", "note", "turn", "tenant", "agent_working_set", "link", "belief", "goal",
    "plan", "lock", "message", "agent", "delegation", "handoff", "config", "conflict", "edge",
    "evolution_snapshot", "summarization_policy", "summarization_request", "tool_execution", "event",
]  # fmt: skip
Role = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Weight = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
MAX_PARTICIPANTS = 64


class Participant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entity_type: EntityType
    entity_id: UUID
    role: Role | None = None


class Provenance(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the relation came from (the CELLSTATE reference's ProvenanceRequest)."""

    source_turn: SourceTurn | None = None
    extraction_method: ExtractionMethod = "unknown"
    confidence: Confidence | None = None


class EdgeDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    edge_type: EdgeType
    participants: Annotated[list[Participant], msgspec.Meta(min_length=2, max_length=MAX_PARTICIPANTS)]
    provenance: Provenance
    weight: Weight | None = None
    trajectory_id: UUID | None = None
    metadata: Metadata = {}


class EdgePatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update: None leaves a field as it is."""

    edge_type: EdgeType | None = None
    weight: Weight | None = None
    metadata: Metadata | None = None


@event_kind("edge.created", 0xD501)
class EdgeCreated(DomainEvent, frozen=True, kw_only=True):
    edge_type: str
    participants: list[Participant]
    provenance: Provenance
    weight: float | None = None
    trajectory_id: UUID | None = None
    metadata: dict[str, Any] = {}
    request_hash: str | None = None


@event_kind("edge.updated", 0xD502)
class EdgeUpdated(DomainEvent, frozen=True, kw_only=True):
    """Every mutable field after the change, so a reader needs no merge."""

    edge_type: str
    weight: float | None = None
    metadata: dict[str, Any] = {}


@event_kind("edge.deleted", 0xD503)
class EdgeDeleted(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


def _check(draft: EdgeDraft) -> None:
    problems: list[FieldProblem] = []
    if not 2 <= len(draft.participants) <= MAX_PARTICIPANTS:
        problems.append(FieldProblem("participants", f"an edge relates 2 to {MAX_PARTICIPANTS} entities", "count"))
    seen: set[UUID] = set()
    for i, p in enumerate(draft.participants):
        if p.entity_id in seen:
            problems.append(FieldProblem(f"participants[{i}].entity_id", "names an entity twice", "duplicate"))
        seen.add(p.entity_id)
    if draft.weight is not None and not 0.0 <= draft.weight <= 1.0:
        problems.append(FieldProblem("weight", "must be between 0.0 and 1.0", "range"))
    if problems:
        raise ValidationFailed(problems)
    check_confidence(draft.provenance.confidence, "provenance.confidence")


@aggregate_root("edge")
class EntityEdge(Aggregate):
    edge_type: str
    participants: list[Participant]
    provenance: Provenance
    weight: float | None
    trajectory_id: UUID | None
    metadata: dict[str, Any]
    deleted: bool
    request_hash: str | None

    @classmethod
    def create(
        cls, ctx: CommandContext, *, edge_id: UUID, draft: EdgeDraft, request_hash: str | None = None
    ) -> EntityEdge:
        _check(draft)
        return cls._create(
            EdgeCreated,
            ctx,
            aggregate_id=edge_id,
            edge_type=draft.edge_type,
            participants=list(draft.participants),
            provenance=draft.provenance,
            weight=draft.weight,
            trajectory_id=draft.trajectory_id,
            metadata=draft.metadata,
            request_hash=request_hash,
        )

    def update(self, ctx: CommandContext, patch: EdgePatch) -> None:
        """Apply what ``patch`` gives; nothing is appended when nothing changes."""
        self.require_live()
        if patch.weight is not None and not 0.0 <= patch.weight <= 1.0:
            raise ValidationFailed([FieldProblem("weight", "must be between 0.0 and 1.0", "range")])
        changed = {
            "edge_type": self.edge_type if patch.edge_type is None else patch.edge_type,
            "weight": self.weight if patch.weight is None else patch.weight,
            "metadata": self.metadata if patch.metadata is None else patch.metadata,
        }
        if all(getattr(self, k) == v for k, v in changed.items()):
            return
        self._trigger(EdgeUpdated, ctx, **changed)

    def delete(self, ctx: CommandContext, *, reason: str | None = None) -> None:
        self.require_live()
        self._trigger(EdgeDeleted, ctx, reason=reason)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"edge {self.id} was deleted")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, EdgeCreated):
            self.edge_type = event.edge_type
            self.participants = event.participants
            self.provenance = event.provenance
            self.weight = event.weight
            self.trajectory_id = event.trajectory_id
            self.metadata = event.metadata
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, EdgeUpdated):
            self.edge_type = event.edge_type
            self.weight = event.weight
            self.metadata = event.metadata
        elif isinstance(event, EdgeDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"EntityEdge cannot apply {type(event).__name__}")
