"""Application service for summarization: policies, requests, and the summaries workers write.

Quipu never calls a model. A request (recorded by ``commands.summarization_firing`` when a
trigger fires, or here when asked) becomes a task for a worker of the policy's agent type
(``bus.summarizer`` publishes it from the log). The worker reports over the task path every
worker uses: its heartbeat takes the request (in_progress), its result is written here as
a note at the target level - whose first event names the request as its cause - with one
``synthesized_from`` edge to each source when the policy says so, and the request's
``completed`` event names the note. Note, edges and completion are one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID, uuid5

import msgspec

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict
from commands.store import EventStore
from commands.summarization_firing import scope_turns
from domain.aggregate import CommandContext
from domain.entity_edge import EdgeDraft, EntityEdge, Participant, Provenance
from domain.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from domain.ids import uuid7
from domain.note import Note, NoteDraft
from domain.scope import Scope
from domain.summarization_policy import PolicyDraft, SummarizationPolicy
from domain.summarization_request import SourceRef, SummarizationRequest
from domain.summarization_triggers import Crossing, Trigger
from domain.trajectory import Trajectory
from domain.turn import Turn

ATTEMPTS = 16
_A = TypeVar("_A", SummarizationPolicy, SummarizationRequest)
SUMMARY_TITLE_MAX = 200


class SummarizationService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    # -- policies -------------------------------------------------------------------
    def create_policy(self, ctx: CommandContext, draft: PolicyDraft) -> SummarizationPolicy:
        checked = CommandContext(ctx.tenant_id, ctx.actor, check_causes(self._store, ctx.tenant_id, ctx.caused_by))
        trajectory = None
        if draft.trajectory_id is not None:
            trajectory = self._store.load(Trajectory, draft.trajectory_id, ctx.tenant_id)
            if trajectory.deleted:
                raise NotFound(f"trajectory {draft.trajectory_id} was deleted")
        policy = SummarizationPolicy.create(checked, policy_id=uuid7(), draft=draft, trajectory=trajectory)
        self._store.save_all(policy)
        return policy

    def get_policy(self, tenant_id: str, policy_id: UUID) -> SummarizationPolicy:
        policy = self._store.load(SummarizationPolicy, policy_id, tenant_id)
        if policy.deleted:
            raise NotFound(f"summarization policy {policy_id} was deleted")
        return policy

    def delete_policy(self, ctx: CommandContext, policy_id: UUID) -> SummarizationPolicy:
        return self._edit(lambda: self.get_policy(ctx.tenant_id, policy_id), lambda p: p.delete(ctx))

    # -- requests -------------------------------------------------------------------
    def get_request(self, tenant_id: str, request_id: UUID) -> SummarizationRequest:
        return self._store.load(SummarizationRequest, request_id, tenant_id)

    def change_status(self, ctx: CommandContext, request_id: UUID, status: str) -> SummarizationRequest:
        """A status change by hand (409 for an illegal one)."""
        return self._edit(lambda: self.get_request(ctx.tenant_id, request_id), lambda r: r.change_status(ctx, status))

    def request_now(
        self,
        ctx: CommandContext,
        policy_id: UUID,
        *,
        scope_id: UUID | None,
        source_note_ids: list[UUID],
        requested_by: UUID | None,
    ) -> SummarizationRequest:
        """A request of a policy with a ``manual`` trigger (409 otherwise): the scope's newest
        turns and the named notes (live, of the tenant; 422 naming the others) are its sources."""
        policy = self.get_policy(ctx.tenant_id, policy_id)
        if not policy.has("manual"):
            raise Conflict(f"summarization policy {policy_id} has no manual trigger")
        causes = list(check_causes(self._store, ctx.tenant_id, ctx.caused_by))
        sources: list[SourceRef] = []
        trajectory_id = policy.trajectory_id
        if scope_id is not None:
            scope = self._store.load(Scope, scope_id, ctx.tenant_id)
            if scope.deleted or not policy.applies_to(scope.trajectory_id):
                raise ValidationFailed([FieldProblem("scope_id", "not a live scope this policy applies to", "scope")])
            sources += scope_turns(self._store, ctx.tenant_id, scope.id, scope.version, policy.max_sources)
            trajectory_id = scope.trajectory_id
            assert scope.last_event_id is not None
            causes.append(scope.last_event_id)
        for i, note_id in enumerate(source_note_ids):
            note = self._live_note(ctx.tenant_id, note_id)
            if note is None:
                raise ValidationFailed(
                    [FieldProblem(f"source_note_ids[{i}]", "no live note with this id", "not_found")]
                )
            sources.append(SourceRef(entity_type="note", entity_id=note.id))
        crossing = Crossing(Trigger("manual"), f"manual:{uuid7()}")
        request = SummarizationRequest.create(
            CommandContext(ctx.tenant_id, ctx.actor, tuple(causes)),
            policy,
            crossing,
            trajectory_id=trajectory_id,
            scope_id=scope_id,
            sources=sources,
            requested_by=requested_by,
        )
        self._store.save_all(request)
        return request

    # -- the worker's side ----------------------------------------------------------
    def source_material(self, request: SummarizationRequest) -> list[dict[str, Any]]:
        """What a worker summarizes: each live source's text (deleted ones are left out)."""
        out: list[dict[str, Any]] = []
        for source in request.sources:
            if source.entity_type == "turn":
                turn = self._store.load(Turn, source.entity_id, request.tenant_id)
                if not turn.deleted:
                    out.append({"entity_type": "turn", "entity_id": str(turn.id), "role": turn.role,
                                "sequence": turn.sequence, "content": turn.content})  # fmt: skip
            elif (note := self._live_note(request.tenant_id, source.entity_id)) is not None:
                out.append({"entity_type": "note", "entity_id": str(note.id), "title": note.title,
                            "abstraction_level": note.abstraction_level, "content": note.content})  # fmt: skip
        return out

    def worker_report(
        self,
        tenant_id: str,
        request_id: UUID,
        kind: str,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        worker: str | None = None,
    ) -> SummarizationRequest:
        """A worker's heartbeat (takes the request), result (writes the summary) or failure;
        409 once the request is over, which tells the worker to stop."""
        ctx = CommandContext(tenant_id, f"worker:{worker or 'nats'}")

        def act(request: SummarizationRequest) -> tuple[Any, ...]:
            pending = request.status == "pending"
            request.take(ctx, worker)
            if kind == "heartbeat":
                return ()
            if kind == "fail":
                request.change_status(ctx, "failed", error=error)
                return ()
            if pending:  # recorded first: the note's event names it
                self._store.save_all(request)
            return self._write_summary(ctx, request, output or {})

        for attempt in range(1, ATTEMPTS + 1):
            request = self.get_request(tenant_id, request_id)
            written = act(request)
            try:
                self._store.save_all(*written, request)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            return request
        raise AssertionError("unreachable")

    def _write_summary(
        self, ctx: CommandContext, request: SummarizationRequest, output: dict[str, Any]
    ) -> tuple[Note | EntityEdge, ...]:
        """The note (caused by the request's latest event), its edges, and the completion."""
        content = output.get("content", output.get("summary"))
        note_sources = [s.entity_id for s in request.sources if s.entity_type == "note"]
        live = [n for n in (self._live_note(request.tenant_id, i) for i in note_sources) if n is not None]
        title = output.get("title") or f"Summary of {len(request.sources)} sources"
        try:
            draft = msgspec.convert(
                {
                    "title": str(title)[:SUMMARY_TITLE_MAX],
                    "content": content,
                    "note_type": "summary",
                    "abstraction_level": request.target_level,
                    "source_note_ids": [n.id for n in live],
                    "source_trajectory_ids": [request.trajectory_id] if request.trajectory_id else [],
                    "metadata": {
                        "summarization_request_id": str(request.id),
                        "summarization_policy_id": str(request.summarization_policy_id),
                    },
                },
                NoteDraft,
            )
        except msgspec.ValidationError as error:
            raise ValidationFailed(
                [FieldProblem("output.content", f"the summary's text: {error}", "invalid")]
            ) from None
        assert request.last_event_id is not None
        note = Note.create(
            CommandContext(ctx.tenant_id, ctx.actor, (request.last_event_id,)),
            note_id=uuid5(request.id, "note"),
            draft=draft,
            now=datetime.now(UTC),
            source_events=tuple(n.last_event_id for n in live if n.last_event_id is not None),
        )
        assert note.last_event_id is not None
        edges: list[EntityEdge] = []
        if request.create_edges:
            for source in request.sources:
                edges.append(
                    EntityEdge.create(
                        CommandContext(ctx.tenant_id, ctx.actor, (note.last_event_id,)),
                        edge_id=uuid5(request.id, f"edge:{source.entity_id}"),
                        draft=EdgeDraft(
                            edge_type="synthesized_from",
                            participants=[
                                Participant(entity_type="note", entity_id=note.id, role="summary"),
                                Participant(entity_type=source.entity_type, entity_id=source.entity_id, role="source"),
                            ],
                            provenance=Provenance(extraction_method="llm_extraction"),
                            trajectory_id=request.trajectory_id,
                        ),
                    )
                )
        request.complete(
            CommandContext(ctx.tenant_id, ctx.actor, (note.last_event_id,)),
            note_id=note.id,
            edge_ids=[e.id for e in edges],
        )
        return (note, *edges)

    def _live_note(self, tenant_id: str, note_id: UUID) -> Note | None:
        try:
            note = self._store.load(Note, note_id, tenant_id)
        except NotFound:
            return None
        return None if note.deleted else note

    def _edit(self, load: Callable[[], _A], change: Callable[[_A], object]) -> _A:
        for attempt in range(1, ATTEMPTS + 1):
            found = load()
            change(found)
            try:
                self._store.save_all(found)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            return found
        raise AssertionError("unreachable")
