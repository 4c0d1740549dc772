"""The note aggregate (seed 002): long-term knowledge that outlives a trajectory.

A note may be derived from artifacts, other notes (abstraction chains: raw -> summary ->
principle) and trajectories. Derivation is causal: the note's first event names the
latest event of every source artifact and note it was derived from, so provenance can
walk from a principle back to the raw material. TTL, content hash, supersede chain and
tombstone work as for artifacts (``domain.artifact``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.artifact import Content, Metadata, Name, NodeName, Ttl, content_hash, expiry
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

NoteType = Literal[
    "convention", "strategy", "gotcha", "fact", "preference", "relationship", "procedure", "meta", "insight",
    "correction", "summary",
]  # fmt: skip
AbstractionLevel = Literal["raw", "summary", "principle"]
SourceIds = Annotated[list[UUID], msgspec.Meta(max_length=100)]


class NoteDraft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client states about a new note (the seed's create body)."""

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
class Note(Aggregate):
    title: str
    content: str
    content_hash: str
    note_type: str
    abstraction_level: str
    source_artifact_ids: list[UUID]
    source_note_ids: list[UUID]
    source_trajectory_ids: list[UUID]
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
        causes = (*source_events, *ctx.caused_by)
        if replaces is not None:
            replaces.require_supersedable()
            assert replaces.last_event_id is not None
            causes = (replaces.last_event_id, *causes)
        return cls._create(
            NoteCreated,
            CommandContext(ctx.tenant_id, ctx.actor, causes),
            aggregate_id=note_id,
            title=draft.title,
            content=draft.content,
            content_hash=content_hash(draft.content),
            note_type=draft.note_type,
            abstraction_level=draft.abstraction_level,
            source_artifact_ids=list(dict.fromkeys(draft.source_artifact_ids)),
            source_note_ids=list(dict.fromkeys(draft.source_note_ids)),
            source_trajectory_ids=list(dict.fromkeys(draft.source_trajectory_ids)),
            metadata=draft.metadata,
            ttl=draft.ttl,
            expires_at=expiry(draft.ttl, now),
            supersedes=replaces.id if replaces is not None else None,
            execution_id=draft.execution_id,
            node_id=draft.node_id,
            request_hash=request_hash,
        )

    def update(self, ctx: CommandContext, patch: NotePatch, *, now: datetime) -> None:
        """Apply what ``patch`` gives; nothing is appended when nothing changes. A new TTL
        counts from now."""
        self.require_live()
        if self.superseded_by is not None:
            raise Conflict(f"note {self.id} was superseded by {self.superseded_by}; update that one")
        content = self.content if patch.content is None else patch.content
        changed = {
            "title": self.title if patch.title is None else patch.title,
            "content": content,
            "content_hash": content_hash(content),
            "note_type": self.note_type if patch.note_type is None else patch.note_type,
            "abstraction_level": self.abstraction_level if patch.abstraction_level is None else patch.abstraction_level,
            "metadata": self.metadata if patch.metadata is None else patch.metadata,
            "ttl": self.ttl if patch.ttl is None else patch.ttl,
            "expires_at": self.expires_at if patch.ttl is None else expiry(patch.ttl, now),
        }
        if all(getattr(self, k) == v for k, v in changed.items()):
            return
        self._trigger(NoteUpdated, ctx, **changed)

    def supersede(self, ctx: CommandContext, *, by: UUID) -> None:
        """Record that ``by`` replaces this note (``ctx`` names its first event)."""
        self.require_supersedable()
        if by == self.id:
            raise Conflict("a note cannot supersede itself")
        self._trigger(NoteSuperseded, ctx, superseded_by=by)

    def delete(self, ctx: CommandContext, *, reason: str | None = None) -> None:
        self.require_live()
        self._trigger(NoteDeleted, ctx, reason=reason)

    def require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"note {self.id} was deleted")

    def require_supersedable(self) -> None:
        self.require_live()
        if self.superseded_by is not None:
            raise Conflict(f"note {self.id} was already superseded by {self.superseded_by}")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, NoteCreated):
            self.title = event.title
            self.content = event.content
            self.content_hash = event.content_hash
            self.note_type = event.note_type
            self.abstraction_level = event.abstraction_level
            self.source_artifact_ids = event.source_artifact_ids
            self.source_note_ids = event.source_note_ids
            self.source_trajectory_ids = event.source_trajectory_ids
            self.metadata = event.metadata
            self.ttl = event.ttl
            self.expires_at = event.expires_at
            self.supersedes = event.supersedes
            self.superseded_by = None
            self.execution_id = event.execution_id
            self.node_id = event.node_id
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, NoteUpdated):
            self.title = event.title
            self.content = event.content
            self.content_hash = event.content_hash
            self.note_type = event.note_type
            self.abstraction_level = event.abstraction_level
            self.metadata = event.metadata
            self.ttl = event.ttl
            self.expires_at = event.expires_at
        elif isinstance(event, NoteSuperseded):
            self.superseded_by = event.superseded_by
        elif isinstance(event, NoteDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Note cannot apply {type(event).__name__}")
