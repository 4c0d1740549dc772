"""The artifact aggregate (CELLSTATE reference): a typed output an agent keeps across scopes.

An artifact's content is hashed by Quipu (SHA-256), never taken from the client. A TTL
becomes an absolute ``expires_at`` when the command is decided, so every reader of the
event agrees on when the item expires. Superseding is a chain: the replacement's first
event names the artifact it ``supersedes``, and the old one records ``superseded_by`` -
once only, since a chain never forks. Delete appends a tombstone; the history stays.

Those rules, and the vocabulary of memory items (TTL, extraction methods, content hash)
that notes and edges reuse, live in ``domain.memory_item``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import CommandContext, aggregate_root
from domain.events import DomainEvent, event_kind
from domain.memory_item import (
    MAX_TTL_MS,
    TTL_SPANS,
    Confidence,
    Content,
    ExtractionMethod,
    MemoryItem,
    Metadata,
    Name,
    NodeName,
    SourceTurn,
    Ttl,
    TtlDuration,
    TtlName,
    check_confidence,
    content_hash,
    expiry,
)

# The memory-item vocabulary used to live here; notes, edges and the API still import
# it from this module, so it stays importable from here.
__all__ = [
    "MAX_TTL_MS",
    "TTL_SPANS",
    "Artifact",
    "ArtifactCreated",
    "ArtifactDeleted",
    "ArtifactDraft",
    "ArtifactPatch",
    "ArtifactSuperseded",
    "ArtifactType",
    "ArtifactUpdated",
    "Confidence",
    "Content",
    "ExtractionMethod",
    "Metadata",
    "Name",
    "NodeName",
    "SourceTurn",
    "Ttl",
    "TtlDuration",
    "TtlName",
    "check_confidence",
    "content_hash",
    "expiry",
]

ArtifactType = Literal[
    "error_log", "code_patch", "design_decision", "user_preference", "fact", "constraint", "tool_result",
    "intermediate_output", "custom", "code", "document", "data", "model", "config", "log", "summary",
    "decision", "plan", "audio", "image", "video", "transcript", "screenshot",
]  # fmt: skip


class ArtifactDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client states about a new artifact (the CELLSTATE reference's create body). ``execution_id``
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
class Artifact(MemoryItem):
    CREATED = ArtifactCreated
    UPDATED = ArtifactUpdated
    SUPERSEDED = ArtifactSuperseded
    DELETED = ArtifactDeleted
    PATCHABLE = ("name", "artifact_type")
    A_NOUN = "an artifact"

    name: str
    artifact_type: str
    extraction_method: str
    confidence: float | None
    source_turn: int | None
    trajectory_id: UUID | None
    scope_id: UUID | None

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
        return cls._create_item(
            ctx,
            item_id=artifact_id,
            draft=draft,
            now=now,
            causes=ctx.caused_by,
            replaces=replaces,
            request_hash=request_hash,
            name=draft.name,
            artifact_type=draft.artifact_type,
            extraction_method=draft.extraction_method,
            confidence=draft.confidence,
            source_turn=draft.source_turn,
            trajectory_id=draft.trajectory_id,
            scope_id=draft.scope_id,
        )

    def update(self, ctx: CommandContext, patch: ArtifactPatch, *, now: datetime) -> None:
        """Apply what ``patch`` gives; nothing is appended when nothing changes. A new TTL
        counts from now."""
        self._update_item(ctx, patch, now=now)
