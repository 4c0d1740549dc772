"""/api/v1/notes: long-term, cross-trajectory knowledge (CELLSTATE reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.artifacts import Order, ttl_of, window
from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from api.resource_helpers import Causes, created, guarded, knowledge, knowledge_item, with_etag
from api.workflows import IdempotencyKey, IfMatch
from domain.artifact import Ttl
from domain.note import AbstractionLevel, Note, NoteDraft, NotePatch, NoteType
from projections.knowledge_queries import list_notes


class NoteWrite(NoteDraft, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The CELLSTATE reference's create body; ``execution_id`` + ``node_id`` name the running node that
    produced it, ``caused_by`` the events it came from (a turn, a tool call)."""

    caused_by: Causes = []


class NoteUpdate(NotePatch, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Null or absent: unchanged (the CELLSTATE reference's "if changing")."""

    caused_by: Causes = []


class NoteOut(msgspec.Struct, kw_only=True):
    note_id: UUID
    tenant_id: str
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
    created_at: datetime
    updated_at: datetime
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        self.links = {"self": f"/api/v1/notes/{self.note_id}"}
        for rel in ("supersedes", "superseded_by"):
            if (other := getattr(self, rel)) is not None:
                self.links[rel] = f"/api/v1/notes/{other}"


def note_out(n: Note) -> NoteOut:
    return NoteOut(
        note_id=n.id,
        tenant_id=n.tenant_id,
        title=n.title,
        content=n.content,
        content_hash=n.content_hash,
        note_type=n.note_type,
        abstraction_level=n.abstraction_level,
        source_artifact_ids=n.source_artifact_ids,
        source_note_ids=n.source_note_ids,
        source_trajectory_ids=n.source_trajectory_ids,
        metadata=n.metadata,
        ttl=n.ttl,
        expires_at=n.expires_at,
        supersedes=n.supersedes,
        superseded_by=n.superseded_by,
        execution_id=n.execution_id,
        node_id=n.node_id,
        created_at=n.created_on,
        updated_at=n.modified_on,
        version=n.version,
        last_event_id=n.last_event_id,
    )


def note_row(r: dict[str, Any]) -> NoteOut:
    return NoteOut(
        **{k: r[k] for k in NoteOut.__struct_fields__ if k not in ("ttl", "links")},
        ttl=ttl_of(r["ttl"]),
    )


class NoteController(Controller):
    path = "/api/v1/notes"
    tags = ["memory"]

    @post("/", operation_id="createNote", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[NoteWrite],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[NoteOut]:
        """Create a note from live source artifacts and notes of the tenant (unknown ones
        answer 422). Safe to retry with ``Idempotency-Key``."""
        return await self._create(data, ctx, principal, idempotency_key, None)

    @post("/{note_id:uuid}/supersede", operation_id="supersedeNote", opt={"scope": "write"}, status_code=201)
    async def supersede(
        self,
        note_id: FromPath[UUID],
        data: JSONBody[NoteWrite],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[NoteOut]:
        """Create the note that replaces this one (which then records ``superseded_by``).
        The replacement keeps the old note's metadata unless the body gives others.
        A note is superseded once: a second attempt answers 409."""
        return await self._create(data, ctx, principal, idempotency_key, note_id)

    async def _create(
        self,
        data: NoteWrite,
        ctx: ApiContext,
        principal: Principal,
        idempotency_key: str | None,
        supersedes: UUID | None,
    ) -> Response[NoteOut]:
        raw = msgspec.to_builtins(data)
        note, is_new = await anyio.to_thread.run_sync(
            lambda: knowledge(ctx).create_note(
                principal.context(data.caused_by),
                data,
                supersedes=supersedes,
                idempotency_key=idempotency_key,
                raw_body=raw,
            )
        )
        bind_correlation(note.correlation_id)
        return created(note_out(note), f"/api/v1/notes/{note.id}", note.version, created_now=is_new)

    @get("/", operation_id="listNotes")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        note_type: FromQuery[NoteType | None] = None,
        abstraction_level: FromQuery[AbstractionLevel | None] = None,
        source_trajectory_id: FromQuery[UUID | None] = None,
        source_artifact_id: FromQuery[UUID | None] = None,
        source_note_id: FromQuery[UUID | None] = None,
        execution_id: FromQuery[UUID | None] = None,
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
        include_expired: FromQuery[bool] = False,
        include_superseded: FromQuery[bool] = False,
        order: FromQuery[Order] = "desc",
    ) -> Page[NoteOut]:
        """List live notes (the ``knowledge`` read model), newest first. Expired and
        superseded ones only when asked for."""
        w = window(created_after, created_before, include_expired, include_superseded, order, limit, offset)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_notes(
                conn,
                principal.tenant_id,
                w,
                note_type=note_type,
                abstraction_level=abstraction_level,
                source_trajectory_id=source_trajectory_id,
                source_artifact_id=source_artifact_id,
                source_note_id=source_note_id,
                execution_id=execution_id,
            )
        return Page(items=[note_row(r) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{note_id:uuid}", operation_id="getNote")
    async def get_one(
        self, note_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[NoteOut]:
        """A note from the event store (no lag); a deleted one answers 404."""
        note = await knowledge_item(ctx, principal, Note, note_id)
        return with_etag(note_out(note), note.version)

    @patch("/{note_id:uuid}", operation_id="updateNote", opt={"scope": "write"})
    async def update(
        self,
        note_id: FromPath[UUID],
        data: JSONBody[NoteUpdate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[NoteOut]:
        """Change what the body gives (a new TTL counts from now); ``If-Match`` guards lost
        updates. A superseded or deleted note answers 409."""
        note = await guarded(
            if_match,
            lambda v: knowledge(ctx).update_note(principal.context(data.caused_by), note_id, data, expected_version=v),
        )
        return with_etag(note_out(note), note.version)

    @delete("/{note_id:uuid}", operation_id="deleteNote", opt={"scope": "write"}, status_code=204)
    async def remove(
        self,
        note_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Delete: appends a tombstone event; the history stays in the event DAG."""
        await guarded(if_match, lambda v: knowledge(ctx).delete_note(principal.context(), note_id, expected_version=v))
