"""Application service for workflow definitions: load, decide, save."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict, PreconditionFailed
from commands.idempotency import idempotent_id, replayed, request_hash
from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.errors import NotFound
from domain.ids import uuid7
from domain.workflow import DEFINITION_CHANGES, Workflow, WorkflowCreated
from domain.workflow_graph import WorkflowDefinition


@dataclass(frozen=True)
class WorkflowInput:
    name: str
    description: str
    definition: WorkflowDefinition
    metadata: dict[str, Any]


# (tenant, callback ids a definition names) -> those of them registered and active
ActiveCallbacks = Callable[[str, Collection[str]], set[str]]


class WorkflowService:
    def __init__(
        self,
        store: EventStore,
        *,
        agent_types: frozenset[str] | None = None,
        active_callbacks: ActiveCallbacks | None = None,
    ) -> None:
        self._store = store
        # When configured, nodes may only name these agent types.
        self.agent_types = agent_types
        self._active_callbacks = active_callbacks

    def callbacks_for(self, tenant_id: str, definition: WorkflowDefinition) -> set[str] | None:
        """The registered callbacks among those ``definition`` names (read from the log, so a
        callback registered a moment ago counts); None when no registry is wired."""
        if self._active_callbacks is None:
            return None
        named = {n.callback_id for n in definition.nodes if n.callback_id is not None}
        return self._active_callbacks(tenant_id, named) if named else set()

    def create(
        self,
        ctx: CommandContext,
        data: WorkflowInput,
        *,
        idempotency_key: str | None = None,
        raw_body: Any = None,
    ) -> tuple[Workflow, bool]:
        """Create a workflow. Returns (workflow as first created, created_now)."""
        body_hash = request_hash(raw_body) if idempotency_key else None
        if idempotency_key:
            workflow_id = idempotent_id(ctx.tenant_id, "workflow", idempotency_key)
            replay = self._replay(ctx, workflow_id, body_hash)
            if replay is not None:
                return replay, False
        else:
            workflow_id = uuid7()
        causes = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        ctx = CommandContext(ctx.tenant_id, ctx.actor, causes)
        workflow = Workflow.create(
            ctx,
            workflow_id=workflow_id,
            name=data.name,
            description=data.description,
            definition=data.definition,
            metadata=data.metadata,
            request_hash=body_hash,
            agent_types=self.agent_types,
            callbacks=self.callbacks_for(ctx.tenant_id, data.definition),
        )
        try:
            self._store.save_all(workflow)
        except ConcurrencyConflict:
            if idempotency_key is None:
                raise
            # A concurrent request with the same key won the race: answer as it did.
            replay = self._replay(ctx, workflow_id, body_hash)
            assert replay is not None
            return replay, False
        return workflow, True

    def _replay(self, ctx: CommandContext, workflow_id: UUID, body_hash: str | None) -> Workflow | None:
        # Version 1 is exactly what the first request answered.
        return replayed(self._store, Workflow, workflow_id, ctx.tenant_id, body_hash, version=1)

    def update(
        self,
        ctx: CommandContext,
        workflow_id: UUID,
        data: WorkflowInput,
        *,
        expected_version: int | None = None,
    ) -> Workflow:
        """Replace the definition (a new version)."""
        return self.edit(
            ctx,
            workflow_id,
            lambda workflow, checked: workflow.update(
                checked,
                name=data.name,
                description=data.description,
                definition=data.definition,
                metadata=data.metadata,
                agent_types=self.agent_types,
                callbacks=self.callbacks_for(ctx.tenant_id, data.definition),
            ),
            expected_version=expected_version,
        )

    def delete(self, ctx: CommandContext, workflow_id: UUID, *, expected_version: int | None = None) -> Workflow:
        """Append the tombstone; the history stays."""
        return self.edit(
            ctx, workflow_id, lambda workflow, checked: workflow.delete(checked), expected_version=expected_version
        )

    def edit(
        self,
        ctx: CommandContext,
        workflow_id: UUID,
        change: Callable[[Workflow, CommandContext], None],
        *,
        expected_version: int | None = None,
    ) -> Workflow:
        """Load, check ``If-Match`` and the named causes, let ``change`` decide, save."""
        workflow = self.get(ctx.tenant_id, workflow_id)
        if expected_version is not None and expected_version != workflow.version:
            raise PreconditionFailed(f"If-Match expected version {expected_version}, current is {workflow.version}")
        causes = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        change(workflow, CommandContext(ctx.tenant_id, ctx.actor, causes))
        self._store.save_all(workflow)
        return workflow

    def get(self, tenant_id: str, workflow_id: UUID, *, definition_version: int | None = None) -> Workflow:
        """The live workflow, or the state at a given definition version (deleted -> 404)."""
        workflow = self._store.load(Workflow, workflow_id, tenant_id)
        if workflow.deleted:
            raise NotFound(f"workflow {workflow_id} was deleted")
        if definition_version is None or definition_version == workflow.definition_version:
            return workflow
        for event in self._store.events_of(workflow_id):
            if isinstance(event, WorkflowCreated) and definition_version == 1:
                return self._store.load(Workflow, workflow_id, tenant_id, version=event.originator_version)
            if isinstance(event, DEFINITION_CHANGES) and event.definition_version == definition_version:
                return self._store.load(Workflow, workflow_id, tenant_id, version=event.originator_version)
        raise NotFound(f"workflow {workflow_id} has no version {definition_version}")
