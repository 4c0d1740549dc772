"""Firing summarization triggers from the log: which events make which requests.

The summarizer role (``bus.summarizer``) hands this module every ``scope.turn_appended``,
``scope.closed`` and ``note.created`` event the log confirms. What fires is decided from
that event and the state of its stream at the event's version - never from a read model
or "the latest" state - and each firing's request id is derived from its crossing
(``domain.summarization_request.request_id_for``). So an event decided twice, by a
redelivery or by two summarizers, records its requests once: the second save collides on
the request's first version and is dropped. Policies apply to events recorded after them.
"""

from __future__ import annotations

from uuid import UUID

import structlog

from commands.errors import ConcurrencyConflict
from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.envelope import EventEnvelope
from domain.errors import NotFound
from domain.scope import Scope
from domain.summarization_policy import SummarizationPolicy
from domain.summarization_request import SourceRef, SummarizationRequest
from domain.summarization_triggers import Crossing, close_crossings, note_crossings, turn_crossings

log = structlog.get_logger(__name__)
ACTOR = "summarizer"
ATTEMPTS = 64
FIRING_KINDS = ("scope.turn_appended", "scope.closed", "note.created")


def policies_before(store: EventStore, tenant_id: str, position: int) -> list[SummarizationPolicy]:
    """The tenant's live policies recorded before log position ``position``."""
    with store.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            "SELECT stream_id FROM event_dag WHERE tenant_id = %s AND kind = 'summarization_policy.created'"
            " AND notification_id < %s ORDER BY notification_id",
            (tenant_id, position),
        )
        ids = [row["stream_id"] for row in curs.fetchall()]
    policies = [store.load(SummarizationPolicy, i, tenant_id) for i in ids]
    return [p for p in policies if not p.deleted]


def scope_turns(store: EventStore, tenant_id: str, scope_id: UUID, version: int, limit: int) -> list[SourceRef]:
    """The newest ``limit`` turns a scope had taken by its ``version``, oldest first - from
    the log: each turn's first event names the scope's ``turn_appended`` event as a parent."""
    with store.datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(
            "SELECT t.stream_id FROM event_dag s JOIN event_edges e ON e.parent_id = s.event_id"
            " JOIN event_dag t ON t.event_id = e.child_id AND t.kind = 'turn.recorded'"
            " WHERE s.tenant_id = %s AND s.stream_id = %s AND s.kind = 'scope.turn_appended' AND s.version <= %s"
            " ORDER BY s.version DESC LIMIT %s",
            (tenant_id, scope_id, version, limit),
        )
        ids = [row["stream_id"] for row in curs.fetchall()]
    return [SourceRef(entity_type="turn", entity_id=i) for i in reversed(ids)]


class TriggerFiring:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def decide(self, envelope: EventEnvelope) -> list[SummarizationRequest]:
        """Record the requests ``envelope`` fires (none again for one decided before)."""
        if envelope.kind == "note.created":
            return self._note(envelope)
        if envelope.kind in ("scope.turn_appended", "scope.closed"):
            return self._scope(envelope)
        return []

    def _scope(self, e: EventEnvelope) -> list[SummarizationRequest]:
        try:
            scope = self._store.load(Scope, e.stream_id, e.tenant_id, version=e.version)
        except NotFound:
            return []
        made: list[SummarizationRequest] = []
        for policy in policies_before(self._store, e.tenant_id, e.notification_id):
            if not policy.applies_to(scope.trajectory_id):
                continue
            if e.kind == "scope.closed":
                crossings = close_crossings(policy.triggers)
            else:
                after = int(e.payload["tokens_used"])
                before = after - int(e.payload["token_count"])
                crossings = turn_crossings(
                    policy.triggers,
                    tokens_before=before,
                    tokens_after=after,
                    budget=scope.token_budget,
                    turn_count=scope.turn_count,
                )
            if not crossings:
                continue
            sources = scope_turns(self._store, e.tenant_id, scope.id, e.version, policy.max_sources)
            for crossing in crossings:
                made += self._record(e, policy, crossing, scope.trajectory_id, scope.id, sources)
        return made

    def _record(
        self,
        e: EventEnvelope,
        policy: SummarizationPolicy,
        crossing: Crossing,
        trajectory_id: UUID | None,
        scope_id: UUID | None,
        sources: list[SourceRef],
    ) -> list[SummarizationRequest]:
        ctx = CommandContext(e.tenant_id, ACTOR, (e.event_id,))
        request = SummarizationRequest.create(
            ctx, policy, crossing, trajectory_id=trajectory_id, scope_id=scope_id, sources=sources
        )
        try:
            self._store.save_all(request)
        except ConcurrencyConflict:  # this crossing was decided before: its request exists
            log.info("summarization_request_exists", request_id=str(request.id), crossing=crossing.key)
            return []
        log.info("summarization_requested", request_id=str(request.id), crossing=crossing.key)
        return [request]

    def _note(self, e: EventEnvelope) -> list[SummarizationRequest]:
        level = e.payload.get("abstraction_level", "raw")
        trajectories = {UUID(str(t)) for t in e.payload.get("source_trajectory_ids") or []}
        made: list[SummarizationRequest] = []
        for candidate in policies_before(self._store, e.tenant_id, e.notification_id):
            if not candidate.has("note_count") or candidate.source_level != level:
                continue
            if candidate.trajectory_id is not None and candidate.trajectory_id not in trajectories:
                continue
            made += self._count(e, candidate.id)
        return made

    def _count(self, e: EventEnvelope, policy_id: UUID) -> list[SummarizationRequest]:
        """Count the note on the policy's stream and record what the count crosses, in one
        transaction; a lost race on the policy's stream is decided again."""
        ctx = CommandContext(e.tenant_id, ACTOR, (e.event_id,))
        for attempt in range(1, ATTEMPTS + 1):
            policy = self._store.load(SummarizationPolicy, policy_id, e.tenant_id)
            if policy.deleted:
                return []
            counted = policy.count_note(ctx, e.stream_id)
            if counted is None:
                return []
            requests = []
            for crossing in note_crossings(policy.triggers, counted):
                n = min(policy.max_sources, crossing.trigger.value or policy.max_sources)
                sources = [SourceRef(entity_type="note", entity_id=i) for i in policy.newest_notes(n)]
                requests.append(
                    SummarizationRequest.create(
                        ctx, policy, crossing, trajectory_id=policy.trajectory_id, scope_id=None, sources=sources
                    )
                )
            try:
                self._store.save_all(policy, *requests)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            return requests
        raise AssertionError("unreachable")
