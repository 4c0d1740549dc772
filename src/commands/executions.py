"""Application service for executions: start a workflow run, take reports, steer it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict
from commands.idempotency import idempotent_id, replayed, request_hash
from commands.store import EventStore
from commands.workflows import WorkflowService
from domain.aggregate import CommandContext
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.execution import Execution
from domain.ids import uuid7
from domain.telemetry import TELEMETRY_KINDS, TelemetryRecord, checked_payload
from domain.timers import TimerKind
from domain.workflow_analysis import problems

ACT_ATTEMPTS = 8


class ExecutionService:
    def __init__(self, store: EventStore, workflows: WorkflowService) -> None:
        self._store = store
        self._workflows = workflows

    def start(
        self,
        ctx: CommandContext,
        workflow_id: UUID,
        *,
        version: int | None,
        input: dict[str, Any],
        idempotency_key: str | None = None,
        raw_body: Any = None,
        timeout: float | None = None,
    ) -> tuple[Execution, bool]:
        """Start a run of the workflow (its latest or a given version). Idempotent by key."""
        body_hash = request_hash(raw_body) if idempotency_key else None
        execution_id = idempotent_id(ctx.tenant_id, "execution", idempotency_key) if idempotency_key else uuid7()
        if idempotency_key and (first := self._replay(ctx, execution_id, body_hash)) is not None:
            return first, False
        workflow = self._workflows.get(ctx.tenant_id, workflow_id, definition_version=version)
        found = problems(workflow.definition, self._workflows.agent_types)
        if found:
            raise ValidationFailed([type(p)(f"workflow.definition.{p.field}", p.message, p.code) for p in found])
        causes = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        # The run's first event names the workflow version it runs as a cause.
        assert workflow.last_event_id is not None
        started_by = CommandContext(ctx.tenant_id, ctx.actor, (workflow.last_event_id, *causes))
        execution = Execution.start(
            started_by,
            execution_id=execution_id,
            workflow_id=workflow.id,
            workflow_version=workflow.definition_version,
            definition=workflow.definition,
            input=input,
            request_hash=body_hash,
            timeout=timeout,
        )
        try:
            self._store.save_all(execution)
        except ConcurrencyConflict:
            if not idempotency_key:
                raise
            replay = self._replay(ctx, execution_id, body_hash)
            assert replay is not None
            return replay, False
        return execution, True

    def _replay(self, ctx: CommandContext, execution_id: UUID, body_hash: str | None) -> Execution | None:
        # An execution moves on after it starts: a replay answers with its current state.
        return replayed(self._store, Execution, execution_id, ctx.tenant_id, body_hash)

    def get(
        self, tenant_id: str, execution_id: UUID, version: int | None = None, *, deleted_ok: bool = False
    ) -> Execution:
        """The execution now, or as it was right after its event number ``version``. A deleted
        run is 404 unless ``deleted_ok`` (reads of its history, which the tombstone keeps)."""
        execution = self._store.load(Execution, execution_id, tenant_id, version=version)
        if execution.deleted and not deleted_ok:
            raise NotFound(f"execution {execution_id} was deleted")
        return execution

    def act(
        self, ctx: CommandContext, execution_id: UUID, command: Callable[[Execution, CommandContext], None]
    ) -> Execution:
        """Load, let the aggregate decide, save. Parallel branches report at the same time,
        so a save that lost the race is decided again on the fresh state (the command's
        guards run again); only a stream that keeps changing ends in 409."""
        causes = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        for attempt in range(1, ACT_ATTEMPTS + 1):
            execution = self.get(ctx.tenant_id, execution_id)
            command(execution, CommandContext(ctx.tenant_id, ctx.actor, causes))
            try:
                self._store.save_all(execution)
            except ConcurrencyConflict:
                if attempt == ACT_ATTEMPTS:
                    raise
                continue
            return execution
        raise AssertionError("unreachable")

    def fire_timer(
        self, tenant_id: str, execution_id: UUID, kind: TimerKind, node_id: str | None, attempt: int
    ) -> bool:
        """Fire a due timer as the system. False when it no longer applies (already fired,
        or the node moved on); a concurrent change is retried by the caller's next pass."""
        execution = self.get(tenant_id, execution_id)
        fired = execution.fire_timer(CommandContext(tenant_id, "system:timer"), kind, node_id, attempt)
        if fired:
            self._store.save_all(execution)
        return fired

    def record_telemetry(
        self, ctx: CommandContext, execution_id: UUID, kind: str, node_id: str | None, payload: dict[str, Any]
    ) -> TelemetryRecord:
        """Record what an agent did inside a node, linked under that node's latest event
        (its start, or its scheduling) in the DAG, or under the execution's start."""
        execution = self.get(ctx.tenant_id, execution_id)
        anchor = execution.scheduled_events.get(node_id) if node_id else None
        if node_id is not None:
            execution.node(node_id)  # 404 for a node the workflow does not have
            if anchor is None:
                raise Conflict(f"node '{node_id}' has not started; telemetry belongs to a node that ran")
            anchor = execution.started_events.get(node_id, anchor)
        parent = anchor or execution.first_event_id
        causes = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        event_cls = TELEMETRY_KINDS[kind]
        fields = checked_payload(event_cls, {**payload, "node_id": node_id})
        record = TelemetryRecord.record(
            CommandContext(ctx.tenant_id, ctx.actor, (parent, *causes)),
            event_cls,
            record_id=uuid7(),
            correlation_id=execution.correlation_id,
            execution_id=execution.id,
            **fields,
        )
        self._store.save_all(record)
        return record

    def execution_of_event(self, tenant_id: str, event_id: UUID) -> UUID:
        """The execution an event (e.g. an approval request) belongs to."""
        with self._store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT stream_id FROM event_dag WHERE event_id = %s AND tenant_id = %s AND kind = %s",
                (event_id, tenant_id, "execution.node_scheduled"),
            )
            row = curs.fetchone()
        if row is None:
            raise NotFound(f"approval {event_id} not found")
        return UUID(str(row["stream_id"]))
