"""Application service for long-term memory: artifacts, notes and entity edges.

Load, decide, save. Creates are idempotent by ``Idempotency-Key`` (the key decides the
new stream's id, see ``commands.idempotency``). An item made by a running execution node
names that node's event as a cause, and every ``caused_by`` is checked for the tenant.
Superseding appends the replacement's first event and the old item's ``superseded``
event in one transaction: a lost race on the old item leaves neither (409).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict, PreconditionFailed
from commands.idempotency import idempotent_id, replayed, request_hash
from commands.node_link import running_node_event
from commands.store import EventStore
from domain.aggregate import Aggregate, CommandContext
from domain.artifact import Artifact, ArtifactDraft, ArtifactPatch
from domain.entity_edge import EdgeDraft, EdgePatch, EntityEdge
from domain.errors import FieldProblem, NotFound, ValidationFailed
from domain.ids import uuid7
from domain.note import Note, NoteDraft, NotePatch

_A = TypeVar("_A", Artifact, Note, EntityEdge)
Decide = Callable[[UUID, str | None, CommandContext], tuple[_A, tuple[Aggregate, ...]]]


def _now() -> datetime:
    return datetime.now(UTC)


class KnowledgeService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    # -- artifacts --------------------------------------------------------------------
    def create_artifact(
        self,
        ctx: CommandContext,
        draft: ArtifactDraft,
        *,
        supersedes: UUID | None = None,
        idempotency_key: str | None = None,
        raw_body: Any = None,
    ) -> tuple[Artifact, bool]:
        """A new artifact; with ``supersedes``, the replacement of that one (which keeps
        its trajectory, scope and metadata unless the draft gives others)."""

        def decide(
            new_id: UUID, body_hash: str | None, checked: CommandContext
        ) -> tuple[Artifact, tuple[Artifact, ...]]:
            old = self._store.load(Artifact, supersedes, ctx.tenant_id) if supersedes else None
            final = draft
            if old is not None:
                final = msgspec.structs.replace(
                    draft,
                    trajectory_id=draft.trajectory_id or old.trajectory_id,
                    scope_id=draft.scope_id or old.scope_id,
                    metadata=draft.metadata or old.metadata,
                )
            new = Artifact.create(
                checked, artifact_id=new_id, draft=final, now=_now(), replaces=old, request_hash=body_hash
            )
            if old is None:
                return new, ()
            old.supersede(self._caused_by(ctx, new), by=new.id)
            return new, (old,)

        resource = "artifact" if supersedes is None else f"artifact-superseding:{supersedes}"
        return self._create(
            ctx, Artifact, resource, decide, idempotency_key, raw_body, draft.execution_id, draft.node_id
        )

    def update_artifact(
        self, ctx: CommandContext, artifact_id: UUID, patch: ArtifactPatch, *, expected_version: int | None = None
    ) -> Artifact:
        return self._edit(Artifact, ctx, artifact_id, lambda a, c: a.update(c, patch, now=_now()), expected_version)

    def delete_artifact(self, ctx: CommandContext, artifact_id: UUID, *, expected_version: int | None = None) -> None:
        """Append the tombstone; the history stays."""
        self._edit(Artifact, ctx, artifact_id, lambda a, c: a.delete(c), expected_version)

    # -- notes ------------------------------------------------------------------------
    def create_note(
        self,
        ctx: CommandContext,
        draft: NoteDraft,
        *,
        supersedes: UUID | None = None,
        idempotency_key: str | None = None,
        raw_body: Any = None,
    ) -> tuple[Note, bool]:
        """A new note derived from existing, live source artifacts and notes of the tenant
        (trajectory ids are taken as given); with ``supersedes``, the replacement of that one,
        which keeps its metadata unless the draft gives other (filters on ``metadata.<key>``
        then find the replacement as they found the original)."""

        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[Note, tuple[Note, ...]]:
            sources = self._source_events(ctx.tenant_id, draft)
            old = self._store.load(Note, supersedes, ctx.tenant_id) if supersedes else None
            final = draft if old is None else msgspec.structs.replace(draft, metadata=draft.metadata or old.metadata)
            new = Note.create(
                checked,
                note_id=new_id,
                draft=final,
                now=_now(),
                source_events=sources,
                replaces=old,
                request_hash=body_hash,
            )
            if old is None:
                return new, ()
            old.supersede(self._caused_by(ctx, new), by=new.id)
            return new, (old,)

        resource = "note" if supersedes is None else f"note-superseding:{supersedes}"
        return self._create(ctx, Note, resource, decide, idempotency_key, raw_body, draft.execution_id, draft.node_id)

    def update_note(
        self, ctx: CommandContext, note_id: UUID, patch: NotePatch, *, expected_version: int | None = None
    ) -> Note:
        return self._edit(Note, ctx, note_id, lambda n, c: n.update(c, patch, now=_now()), expected_version)

    def delete_note(self, ctx: CommandContext, note_id: UUID, *, expected_version: int | None = None) -> None:
        self._edit(Note, ctx, note_id, lambda n, c: n.delete(c), expected_version)

    def _source_events(self, tenant_id: str, draft: NoteDraft) -> tuple[UUID, ...]:
        """The latest event of every source artifact and note; every missing, foreign or
        deleted source is reported at once (422)."""
        problems: list[FieldProblem] = []
        events: list[UUID] = []
        sources: tuple[tuple[str, type[Artifact] | type[Note], list[UUID]], ...] = (
            ("source_artifact_ids", Artifact, draft.source_artifact_ids),
            ("source_note_ids", Note, draft.source_note_ids),
        )
        for field, cls, ids in sources:
            for i, source_id in enumerate(ids):
                try:
                    source = self._store.load(cls, source_id, tenant_id)
                except NotFound:
                    problems.append(FieldProblem(f"{field}[{i}]", f"{cls.CATEGORY} {source_id} not found", "unknown"))
                    continue
                if source.deleted:
                    problems.append(FieldProblem(f"{field}[{i}]", f"{cls.CATEGORY} {source_id} was deleted", "deleted"))
                elif source.last_event_id is not None:
                    events.append(source.last_event_id)
        if problems:
            raise ValidationFailed(problems)
        return tuple(dict.fromkeys(events))

    # -- edges ------------------------------------------------------------------------
    def create_edge(
        self, ctx: CommandContext, draft: EdgeDraft, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[EntityEdge, bool]:
        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[EntityEdge, tuple[()]]:
            return EntityEdge.create(checked, edge_id=new_id, draft=draft, request_hash=body_hash), ()

        return self._create(ctx, EntityEdge, "edge", decide, idempotency_key, raw_body, None, None)

    def create_edges(
        self,
        ctx: CommandContext,
        drafts: Sequence[EdgeDraft],
        *,
        idempotency_key: str | None = None,
        raw_body: Any = None,
    ) -> tuple[list[EntityEdge], bool]:
        """Several edges in one transaction: all are created, or none."""
        body_hash = request_hash(raw_body) if idempotency_key else None
        if idempotency_key:
            ids = [idempotent_id(ctx.tenant_id, "edge-batch", f"{idempotency_key}\x00{i}") for i in range(len(drafts))]
            if ids and replayed(self._store, EntityEdge, ids[0], ctx.tenant_id, body_hash, version=1):
                return [self._store.load(EntityEdge, i, ctx.tenant_id, version=1) for i in ids], False
        else:
            ids = [uuid7() for _ in drafts]
        checked = self._context(ctx, None, None)
        edges: list[EntityEdge] = []
        for i, (edge_id, draft) in enumerate(zip(ids, drafts, strict=True)):
            try:
                edges.append(EntityEdge.create(checked, edge_id=edge_id, draft=draft, request_hash=body_hash))
            except ValidationFailed as error:
                raise ValidationFailed(
                    [FieldProblem(f"[{i}].{p.field}", p.message, p.code) for p in error.problems]
                ) from error
        try:
            self._store.save_all(*edges)
        except ConcurrencyConflict:
            if not idempotency_key or not replayed(
                self._store, EntityEdge, ids[0], ctx.tenant_id, body_hash, version=1
            ):
                raise
            return [self._store.load(EntityEdge, i, ctx.tenant_id, version=1) for i in ids], False
        return edges, True

    def update_edge(
        self, ctx: CommandContext, edge_id: UUID, patch: EdgePatch, *, expected_version: int | None = None
    ) -> EntityEdge:
        return self._edit(EntityEdge, ctx, edge_id, lambda e, c: e.update(c, patch), expected_version)

    def delete_edge(self, ctx: CommandContext, edge_id: UUID, *, expected_version: int | None = None) -> None:
        self._edit(EntityEdge, ctx, edge_id, lambda e, c: e.delete(c), expected_version)

    # -- shared -----------------------------------------------------------------------
    def get(self, cls: type[_A], tenant_id: str, item_id: UUID) -> _A:
        """The live item from the event store (no projection lag); deleted ones answer 404."""
        item = self._store.load(cls, item_id, tenant_id)
        if item.deleted:
            raise NotFound(f"{cls.CATEGORY} {item_id} was deleted")
        return item

    def _create(
        self,
        ctx: CommandContext,
        cls: type[_A],
        resource: str,
        decide: Decide[_A],
        idempotency_key: str | None,
        raw_body: Any,
        execution_id: UUID | None,
        node_id: str | None,
    ) -> tuple[_A, bool]:
        """Returns (the item as first created, created_now)."""
        body_hash = request_hash(raw_body) if idempotency_key else None
        if idempotency_key:
            new_id = idempotent_id(ctx.tenant_id, resource, idempotency_key)
            first = replayed(self._store, cls, new_id, ctx.tenant_id, body_hash, version=1)
            if first is not None:
                return first, False
        else:
            new_id = uuid7()
        item, others = decide(new_id, body_hash, self._context(ctx, execution_id, node_id))
        try:
            self._store.save_all(item, *others)
        except ConcurrencyConflict:
            if idempotency_key is None:
                raise
            # A concurrent request with the same key won the race: answer as it did.
            first = replayed(self._store, cls, new_id, ctx.tenant_id, body_hash, version=1)
            if first is None:
                raise
            return first, False
        return item, True

    def _context(self, ctx: CommandContext, execution_id: UUID | None, node_id: str | None) -> CommandContext:
        """The checked causes, led by the producing node's event when a node is named."""
        causes = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        if (execution_id is None) != (node_id is None):
            missing = "execution_id" if execution_id is None else "node_id"
            raise ValidationFailed([FieldProblem(missing, "execution_id and node_id go together", "required")])
        if execution_id is not None and node_id is not None:
            node_event = running_node_event(self._store, ctx.tenant_id, execution_id, node_id)
            causes = tuple(dict.fromkeys((node_event, *causes)))
        return CommandContext(ctx.tenant_id, ctx.actor, causes)

    @staticmethod
    def _caused_by(ctx: CommandContext, new: Aggregate) -> CommandContext:
        assert new.last_event_id is not None
        return CommandContext(ctx.tenant_id, ctx.actor, (new.last_event_id,))

    def _edit(
        self,
        cls: type[_A],
        ctx: CommandContext,
        item_id: UUID,
        change: Callable[[_A, CommandContext], None],
        expected_version: int | None,
    ) -> _A:
        """Load, check ``If-Match`` and the named causes, let ``change`` decide, save. A
        deleted item is loaded too, so its own guard answers (409), not a bare 404."""
        item = self._store.load(cls, item_id, ctx.tenant_id)
        if expected_version is not None and expected_version != item.version:
            raise PreconditionFailed(f"If-Match expected version {expected_version}, current is {item.version}")
        change(item, CommandContext(ctx.tenant_id, ctx.actor, check_causes(self._store, ctx.tenant_id, ctx.caused_by)))
        self._store.save_all(item)
        return item
