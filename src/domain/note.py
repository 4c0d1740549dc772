"""The note aggregate (CELLSTATE reference): long-term knowledge that outlives a trajectory.

A note may be derived from artifacts, other notes (abstraction chains: raw -> summary ->
principle) and trajectories. Derivation is causal: the note's first event names the
latest event of every source artifact and note it was derived from, so provenance can
walk from a principle back to the raw material. TTL, content hash, supersede chain and
tombstone work as for artifacts (``domain.memory_item``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import CommandContext, aggregate_root
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind
from domain.memory_item import Content, MemoryItem, Metadata, Name, NodeName, Ttl

NoteType = Literal[
    "convention", "strategy", "gotcha", "fact", "preference", "relationship", "procedure", "meta", "insight",
    "correction", "summary",
]  # fmt: skip
AbstractionLevel = Literal["raw", "summary", "principle"]
SourceIds = Annotated[list[UUID], msgspec.Meta(max_length=100)]


class NoteDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client states about a new note (the CELLSTATE reference's create body)."""

    title: Name
    content: Content
    note_type: NoteType
    abstraction_level: AbstractionLevel = "raw"
    source_artifact_ids: SourceIds = []
    source_note_ids: SourceIds = []
    source_trajectory_ids: SourceIds = []
    metadata: Metadata = {}
    ttl: Ttl = "persistent"
    execution_id: UUID | None = None
    node_id: NodeName | None = None


class NotePatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update: None leaves a field as it is."""

    title: Name | None = None
    content: Content | None = None
    note_type: NoteType | None = None
    abstraction_level: AbstractionLevel | None = None
    metadata: Metadata | None = None
    ttl: Ttl | None = None


@event_kind("note.created", 0xD401)
class NoteCreated(DomainEvent, frozen=True, kw_only=True):
    title: str
    content: str
    content_hash: str
    note_type: str
    abstraction_level: str = "raw"
    source_artifact_ids: list[UUID] = []
    source_note_ids: list[UUID] = []
    source_trajectory_ids: list[UUID] = []
    metadata: dict[str, Any] = {}
    ttl: Ttl = "persistent"
    expires_at: datetime | None = None
    supersedes: UUID | None = None
    execution_id: UUID | None = None
    node_id: str | None = None
    request_hash: str | None = None


@event_kind("note.updated", 0xD402)
class NoteUpdated(DomainEvent, frozen=True, kw_only=True):
    """Every mutable field after the change, so a reader needs no merge."""

    title: str
    content: str
    content_hash: str
    note_type: str
    abstraction_level: str = "raw"
    metadata: dict[str, Any] = {}
    ttl: Ttl = "persistent"
    expires_at: datetime | None = None


@event_kind("note.superseded", 0xD403)
class NoteSuperseded(DomainEvent, frozen=True, kw_only=True):
    superseded_by: UUID


@event_kind("note.deleted", 0xD404)
class NoteDeleted(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


@aggregate_root("note")
class Note(MemoryItem):
    CREATED = NoteCreated
    UPDATED = NoteUpdated
    SUPERSEDED = NoteSuperseded
    DELETED = NoteDeleted
    PATCHABLE = ("title", "note_type", "abstraction_level")
    A_NOUN = "a note"

    title: str
    note_type: str
    abstraction_level: str
    source_artifact_ids: list[UUID]
    source_note_ids: list[UUID]
    source_trajectory_ids: list[UUID]

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        *,
        note_id: UUID,
        draft: NoteDraft,
        now: datetime,
        source_events: tuple[UUID, ...] = (),
        replaces: Note | None = None,
        request_hash: str | None = None,
    ) -> Note:
        """A new note. ``source_events`` are the latest events of the source artifacts and
        notes (checked by the caller); with ``replaces``, the next link of its chain."""
        if note_id in draft.source_note_ids:
            raise Conflict("a note cannot be its own source")
        return cls._create_item(
            ctx,
            item_id=note_id,
            draft=draft,
            now=now,
            causes=(*source_events, *ctx.caused_by),
            replaces=replaces,
            request_hash=request_hash,
            title=draft.title,
            note_type=draft.note_type,
            abstraction_level=draft.abstraction_level,
            source_artifact_ids=list(dict.fromkeys(draft.source_artifact_ids)),
            source_note_ids=list(dict.fromkeys(draft.source_note_ids)),
            source_trajectory_ids=list(dict.fromkeys(draft.source_trajectory_ids)),
        )

    def update(self, ctx: CommandContext, patch: NotePatch, *, now: datetime) -> None:
        """Apply what ``patch`` gives; nothing is appended when nothing changes. A new TTL
        counts from now."""
        self._update_item(ctx, patch, now=now)
