"""Application service for delegations: create, accept (optionally starting an execution),
reject, complete.

A delegation may name the message that asked for it (``message_id``): its first event
then names that message's latest event as a cause. An acceptance that starts an execution
saves both in one transaction: the delegation's ``accepted`` event and the execution's
``execution.started``, whose parents are the workflow version it runs and the acceptance,
so the run's provenance walks back through the delegation to the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from commands.exchange_writes import create_once, edit
from commands.messages import MessageService
from commands.store import EventStore
from commands.workflows import WorkflowService
from domain.agent import Agent
from domain.aggregate import Aggregate, CommandContext
from domain.delegation import Delegation
from domain.errors import FieldProblem, NotFound, ValidationFailed
from domain.execution import Execution
from domain.ids import uuid7
from domain.workflow_analysis import problems


@dataclass(frozen=True)
class DelegationInput:
    from_agent_id: UUID
    to_agent_id: UUID
    task_description: str
    trajectory_id: UUID
    scope_id: UUID
    context: dict[str, Any] | None = None
    expected_completion: datetime | None = None
    message_id: UUID | None = None


@dataclass(frozen=True)
class ExecutionRequest:
    """The run an acceptance starts: a workflow (its latest or a given version) and input."""

    workflow_id: UUID
    version: int | None = None
    input: dict[str, Any] = field(default_factory=dict)


class DelegationService:
    def __init__(self, store: EventStore, workflows: WorkflowService) -> None:
        self._store = store
        self._workflows = workflows

    def create(
        self, ctx: CommandContext, data: DelegationInput, *, idempotency_key: str | None = None, raw_body: Any = None
    ) -> tuple[Delegation, bool]:
        """A pending delegation between registered agents (404), allowed by the delegator's
        ``can_delegate_to`` (409)."""

        def decide(new_id: UUID, body_hash: str | None, checked: CommandContext) -> tuple[Delegation, tuple[()]]:
            asked_by = None
            if data.message_id is not None:
                message = MessageService(self._store).get(ctx.tenant_id, data.message_id)
                assert message.last_event_id is not None
                asked_by = (message.id, message.last_event_id)
            delegation = Delegation.create(
                checked,
                delegation_id=new_id,
                delegator=self._agent(ctx.tenant_id, data.from_agent_id),
                delegatee=self._agent(ctx.tenant_id, data.to_agent_id),
                task_description=data.task_description,
                trajectory_id=data.trajectory_id,
                scope_id=data.scope_id,
                context=data.context,
                expected_completion=data.expected_completion,
                asked_by=asked_by,
                request_hash=body_hash,
            )
            return delegation, ()

        return create_once(self._store, ctx, Delegation, decide, idempotency_key=idempotency_key, raw_body=raw_body)

    def get(self, tenant_id: str, delegation_id: UUID) -> Delegation:
        return self._store.load(Delegation, delegation_id, tenant_id)

    def accept(
        self, ctx: CommandContext, delegation_id: UUID, agent_id: UUID, *, run: ExecutionRequest | None = None
    ) -> Delegation:
        """The delegatee accepts (409 for any other agent or a delegation not pending); with
        ``run``, the execution starts in the same transaction, caused by the acceptance."""
        workflow = self._workflows.get(ctx.tenant_id, run.workflow_id, definition_version=run.version) if run else None
        if workflow is not None:
            found = problems(workflow.definition, self._workflows.agent_types)
            if found:
                raise ValidationFailed([FieldProblem("execution.workflow_id", p.message, p.code) for p in found])

        def change(delegation: Delegation, checked: CommandContext) -> tuple[Aggregate, ...]:
            if workflow is None or run is None:
                delegation.accept(checked, agent_id)
                return ()
            execution_id = uuid7()
            acceptance = delegation.accept(checked, agent_id, execution_id=execution_id)
            assert workflow.last_event_id is not None
            execution = Execution.start(
                CommandContext(ctx.tenant_id, ctx.actor, (workflow.last_event_id, acceptance)),
                execution_id=execution_id,
                workflow_id=workflow.id,
                workflow_version=workflow.definition_version,
                definition=workflow.definition,
                input=run.input,
            )
            return (execution,)

        return edit(self._store, ctx, Delegation, delegation_id, change)

    def reject(self, ctx: CommandContext, delegation_id: UUID, agent_id: UUID, reason: str) -> Delegation:
        def change(delegation: Delegation, checked: CommandContext) -> tuple[Aggregate, ...]:
            delegation.reject(checked, agent_id, reason)
            return ()

        return edit(self._store, ctx, Delegation, delegation_id, change)

    def complete(self, ctx: CommandContext, delegation_id: UUID, agent_id: UUID, result: dict[str, Any]) -> Delegation:
        def change(delegation: Delegation, checked: CommandContext) -> tuple[Aggregate, ...]:
            delegation.complete(checked, agent_id, result)
            return ()

        return edit(self._store, ctx, Delegation, delegation_id, change)

    def _agent(self, tenant_id: str, agent_id: UUID) -> Agent:
        agent = self._store.load(Agent, agent_id, tenant_id)
        if agent.deleted:
            raise NotFound(f"agent {agent_id} was unregistered")
        return agent
