"""The workflow-definition aggregate: versioned definitions with a tombstone on delete."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, ValidationFailed
from domain.events import DomainEvent, event_kind
from domain.workflow_graph import WorkflowDefinition, structural_problems

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]


@event_kind("workflow.created", 0xA001)
class WorkflowCreated(DomainEvent, frozen=True, kw_only=True):
    name: str
    description: str
    definition: WorkflowDefinition
    metadata: dict[str, Any] = {}
    request_hash: str | None = None


@event_kind("workflow.updated", 0xA002)
class WorkflowUpdated(DomainEvent, frozen=True, kw_only=True):
    name: str
    description: str
    definition: WorkflowDefinition
    metadata: dict[str, Any] = {}
    definition_version: int = 0


@event_kind("workflow.deleted", 0xA003)
class WorkflowDeleted(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


@aggregate_root("workflow")
class Workflow(Aggregate):
    """A named workflow whose definition changes by versions; nothing is ever overwritten."""

    name: str
    description: str
    definition: WorkflowDefinition
    metadata: dict[str, Any]
    definition_version: int
    deleted: bool
    request_hash: str | None

    @classmethod
    def create(
        cls,
        ctx: CommandContext,
        *,
        workflow_id: UUID,
        name: str,
        description: str,
        definition: WorkflowDefinition,
        metadata: dict[str, Any],
        request_hash: str | None = None,
    ) -> Workflow:
        _check(definition)
        return cls._create(
            WorkflowCreated,
            ctx,
            aggregate_id=workflow_id,
            name=name,
            description=description,
            definition=definition,
            metadata=metadata,
            request_hash=request_hash,
        )

    def update(
        self,
        ctx: CommandContext,
        *,
        name: str,
        description: str,
        definition: WorkflowDefinition,
        metadata: dict[str, Any],
    ) -> None:
        self._require_live()
        _check(definition)
        self._trigger(
            WorkflowUpdated,
            ctx,
            name=name,
            description=description,
            definition=definition,
            metadata=metadata,
            definition_version=self.definition_version + 1,
        )

    def delete(self, ctx: CommandContext, *, reason: str | None = None) -> None:
        self._require_live()
        self._trigger(WorkflowDeleted, ctx, reason=reason)

    def _require_live(self) -> None:
        if self.deleted:
            raise Conflict(f"workflow {self.id} was deleted")

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, WorkflowCreated):
            self.name = event.name
            self.description = event.description
            self.definition = event.definition
            self.metadata = event.metadata
            self.definition_version = 1
            self.deleted = False
            self.request_hash = event.request_hash
        elif isinstance(event, WorkflowUpdated):
            self.name = event.name
            self.description = event.description
            self.definition = event.definition
            self.metadata = event.metadata
            self.definition_version = event.definition_version
        elif isinstance(event, WorkflowDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Workflow cannot apply {type(event).__name__}")


def _check(definition: WorkflowDefinition) -> None:
    problems = structural_problems(definition)
    if problems:
        raise ValidationFailed([type(p)(f"definition.{p.field}", p.message, p.code) for p in problems])
