"""The artifact aggregate (seed 002): a typed output an agent keeps across scopes.

An artifact's content is hashed by Quipu (SHA-256), never taken from the client. A TTL
becomes an absolute ``expires_at`` when the command is decided, so every reader of the
event agrees on when the item expires. Superseding is a chain: the replacement's first
event names the artifact it ``supersedes``, and the old one records ``superseded_by`` -
once only, since a chain never forks. Delete appends a tombstone; the history stays.

The shared vocabulary of memory items (TTL, extraction methods, provenance, content
hash) lives here too, because notes and edges reuse it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, FieldProblem, ValidationFailed
from domain.events import DomainEvent, event_kind

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Content = Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
Metadata = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]
NodeName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
SourceTurn = Annotated[int, msgspec.Meta(ge=0)]

ArtifactType = Literal[
    "error_log", "code_patch", "design_decision", "user_preference", "fact", "constraint", "tool_result",
    "intermediate_output", "custom", "code", "document", "data", "model", "config", "log", "summary",
    "decision", "plan", "audio", "image", "video", "transcript", "screenshot",
]  # fmt: skip
ExtractionMethod = Literal[
    "explicit", "inferred", "user_provided", "llm_extraction", "tool_extraction", "memory_recall",
    "external_api", "unknown",
]  # fmt: skip

# Named lifetimes. persistent/permanent never expire; session and scope end with their
# session or scope (not with the clock), so they carry no expires_at either.
TtlName = Literal["persistent", "permanent", "session", "scope", "ephemeral", "short_term", "medium_term", "long_term"]
TTL_SPANS: dict[str, timedelta] = {
    "ephemeral": timedelta(hours=1),
    "short_term": timedelta(days=1),
    "medium_term": timedelta(days=7),
    "long_term": timedelta(days=90),
}
MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000


class TtlDuration(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An explicit lifetime in milliseconds from the moment the item is written."""

    duration_ms: Annotated[int, msgspec.Meta(gt=0, le=MAX_TTL_MS)]


Ttl = TtlName | TtlDuration


def expiry(ttl: Ttl, now: datetime) -> datetime | None:
    """When an item written at ``now`` with ``ttl`` expires (None: not by the clock)."""
    if isinstance(ttl, TtlDuration):
        return now + timedelta(milliseconds=ttl.duration_ms)
    span = TTL_SPANS.get(ttl)
    return now + span if span is not None else None


def content_hash(content: str) -> str:
    """SHA-256 of the UTF-8 content, hex: computed by Quipu so it can be trusted."""
    return hashlib.sha256(content.encode()).hexdigest()


def check_confidence(confidence: float | None, field: str = "confidence") -> None:
    """Decoding already bounds it; the domain keeps the rule for callers that skip decoding."""
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise ValidationFailed([FieldProblem(field, "must be between 0.0 and 1.0", "range")])


class ArtifactDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client states about a new artifact (the seed's create body). ``execution_id``
    and ``node_id`` name the running node that produced it, if any."""

    name: Name
    artifact_type: ArtifactType
    content: Content
    extraction_method: ExtractionMethod
    confidence: Confidence | None = None
    source_turn: SourceTurn | None = None
    trajectory_id: UUID | None = None
    scope_id: UUID | None = None
    metadata: Metadata = {}
    ttl: Ttl = "persistent"
    execution_id: UUID | None = None
    node_id: NodeName | None = None


class ArtifactPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update: None leaves a field as it is."""

    name: Name | None = None
    artifact_type: ArtifactType | None = None
    content: Content | None = None
    metadata: Metadata | None = None
    ttl: Ttl | None = None


@event_kind("artifact.created", 0xD301)
class ArtifactCreated(DomainEvent, frozen=True, kw_only=True):
    name: str
    artifact_type: str
    content: str
    content_hash: str
    extraction_method: str
    confidence: float | None = None
    source_turn: int | None = None
    trajectory_id: UUID | None = None
    scope_id: UUID | None = None
    metadata: dict[str, Any] = {}
    ttl: Ttl = "persistent"
    expires_at: datetime | None = None
    supersedes: UUID | None = None
    execution_id: UUID | None = None
    node_id: str | None = None
    request_hash: str | None = None


@event_kind("artifact.updated", 0xD302)
class ArtifactUpdated(DomainEvent, frozen=True, kw_only=True):
    """Every mutable field after the change, so a reader needs no merge."""

    name: str
    artifact_type: str
    content: str
    content_hash: str
    metadata: dict[str, Any] = {}
    ttl: Ttl = "persistent"
    expires_at: datetime | None = None


@event_kind("artifact.superseded", 0xD303)
class ArtifactSuperseded(DomainEvent, frozen=True, kw_only=True):
    superseded_by: UUID


@event_kind("artifact.deleted", 0xD304)
class ArtifactDeleted(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


@aggregate_root("artifact")
class Artifact(Aggregate):
    name: str
    artifact_type: str
    content: str
    content_hash: str
    extraction_method: str
    confidence: float | None
    source_turn: int | None
    trajectory_id: UUID | None
    scope_id: UUID | None
    metadata: dict[str, Any]
    ttl: Ttl
    expires_at: datetime | None
    supersedes: UUID | None
    superseded_by: UUID | None
    execution_id: UUID | None
    node_id: str | None
    deleted: bool
    request_hash: str | None

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        *,
        artifact_id: UUID,
        draft: ArtifactDraft,
        now: datetime,
        replaces: Artifact | None = None,
        request_hash: str | None = None,
    ) -> Artifact:
        """A new artifact; with ``replaces``, the next link of that artifact's chain (the
        caller then records ``replaces.supersede``). Its first event names the replaced
        artifact's latest event as a cause."""
        check_confidence(draft.confidence)
        causes = ctx.caused_by
        if replaces is not None:
            replaces.require_supersedable()
            assert replaces.last_event_id is not None
            causes = (replaces.last_event_id, *causes)
        return cls._create(
            ArtifactCreated,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=artifact_id,
            name=draft.name,
            artifact_type=draft.artifact_type,
            content=draft.content,
            content_hash=content_hash(draft.content),
            extraction_method=draft.extraction_method,
            confidence=draft.confidence,
            source_turn=draft.source_turn,
            trajectory_id=draft.trajectory_id,
            scope_id=draft.scope_id,
            metadata=draft.metadata,
            ttl=draft.ttl,
            expires_at=expiry(draft.ttl, now),
            supersedes=replaces.id if replaces is not None else None,
            execution_id=draft.execution_id,
            node_id=draft.node_id,
            request_hash=request_hash,
        )

    def update(self, ctx: CommandContext, patch: ArtifactPatch, *, now: datetime) -> None:
        """Apply what ``patch`` gives; nothing is appended when nothing changes. A new TTL
        counts from now."""
        self.require_live()
        if self.superseded_by is not None:
            raise Conflict(f"artifact {self.id} was superseded by {self.superseded_by}; update that one")
        content = self.content if patch.content is None else patch.content
        changed = {
            "name": self.name if patch.name is None else patch.name,
            "artifact_type": self.artifact_type if patch.artifact_type is None else patch.artifact_type,
            "content": content,
            "content_hash": content_hash(content),
            "metadata": self.metadata if patch.metadata is None else patch.metadata,
            "ttl": self.ttl if patch.ttl is None else patch.ttl,
            "expires_at": self.expires_at if patch.ttl is None else expiry(patch.ttl, now),
        }
        if all(getattr(self, k) == v for k, v in changed.items()):
            return
        self._trigger(ArtifactUpdated, ctx, **changed)

    def supersede(self, ctx: CommandContext, *, by: UUID) -> None:
        """Record that ``by`` replaces this artifact (``ctx`` names its first event)."""
        self.require_supersedable()
        if by == self.id:
            raise Conflict("an artifact cannot supersede itself")
        self._trigger(ArtifactSuperseded, ctx, superseded_by=by)

    def delete(self, ctx: CommandContext, *, reason: str | None = None) -> None:
        self.require_live()
        self._trigger(ArtifactDeleted, ctx, reason=reason)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"artifact {self.id} was deleted")

    def require_supersedable(self) -> None:
        self.require_live()
        if self.superseded_by is not None:
            raise Conflict(f"artifact {self.id} was already superseded by {self.superseded_by}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, ArtifactCreated):
            self.name = event.name
            self.artifact_type = event.artifact_type
            self.content = event.content
            self.content_hash = event.content_hash
            self.extraction_method = event.extraction_method
            self.confidence = event.confidence
            self.source_turn = event.source_turn
            self.trajectory_id = event.trajectory_id
            self.scope_id = event.scope_id
            self.metadata = event.metadata
            self.ttl = event.ttl
            self.expires_at = event.expires_at
            self.supersedes = event.supersedes
            self.superseded_by = None
            self.execution_id = event.execution_id
            self.node_id = event.node_id
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, ArtifactUpdated):
            self.name = event.name
            self.artifact_type = event.artifact_type
            self.content = event.content
            self.content_hash = event.content_hash
            self.metadata = event.metadata
            self.ttl = event.ttl
            self.expires_at = event.expires_at
        elif isinstance(event, ArtifactSuperseded):
            self.superseded_by = event.superseded_by
        elif isinstance(event, ArtifactDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Artifact cannot apply {type(event).__name__}")
