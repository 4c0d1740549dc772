"""The workflow-definition aggregate: versioned definitions with a tombstone on delete."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Annotated, Any
from uuid import UUID

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.events import DomainEvent, event_kind
from domain.workflow_analysis import problems
from domain.workflow_graph import Edge, Node, WorkflowDefinition

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


@event_kind("workflow.node_added", 0xA004)
class WorkflowNodeAdded(DomainEvent, frozen=True, kw_only=True):
    node: Node
    definition_version: int


@event_kind("workflow.node_updated", 0xA005)
class WorkflowNodeUpdated(DomainEvent, frozen=True, kw_only=True):
    node: Node
    definition_version: int


@event_kind("workflow.node_removed", 0xA006)
class WorkflowNodeRemoved(DomainEvent, frozen=True, kw_only=True):
    node_id: str
    definition_version: int


@event_kind("workflow.edge_added", 0xA007)
class WorkflowEdgeAdded(DomainEvent, frozen=True, kw_only=True):
    edge: Edge
    definition_version: int


@event_kind("workflow.edge_removed", 0xA008)
class WorkflowEdgeRemoved(DomainEvent, frozen=True, kw_only=True):
    source: str
    target: str
    definition_version: int


DEFINITION_CHANGES = (
    WorkflowUpdated,
    WorkflowNodeAdded,
    WorkflowNodeUpdated,
    WorkflowNodeRemoved,
    WorkflowEdgeAdded,
    WorkflowEdgeRemoved,
)


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
        agent_types: Iterable[str] | None = None,
        callbacks: Collection[str] | None = None,
    ) -> Workflow:
        _check(definition, agent_types, callbacks=callbacks)
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
        agent_types: Iterable[str] | None = None,
        callbacks: Collection[str] | None = None,
    ) -> None:
        self._require_live()
        _check(definition, agent_types, callbacks=callbacks)
        self._trigger(
            WorkflowUpdated,
            ctx,
            name=name,
            description=description,
            definition=definition,
            metadata=metadata,
            definition_version=self.definition_version + 1,
        )

    def add_node(
        self,
        ctx: CommandContext,
        node: Node,
        agent_types: Iterable[str] | None = None,
        callbacks: Collection[str] | None = None,
    ) -> None:
        self._require_live()
        if any(n.id == node.id for n in self.definition.nodes):
            raise Conflict(f"node '{node.id}' already exists")
        nodes = [*self.definition.nodes, node]
        _check(_with_nodes(self.definition, nodes), agent_types, complete=False, callbacks=callbacks)
        self._trigger(WorkflowNodeAdded, ctx, node=node, definition_version=self.definition_version + 1)

    def update_node(
        self,
        ctx: CommandContext,
        node: Node,
        agent_types: Iterable[str] | None = None,
        callbacks: Collection[str] | None = None,
    ) -> None:
        self._require_live()
        self._node_index(node.id)
        nodes = [node if n.id == node.id else n for n in self.definition.nodes]
        _check(_with_nodes(self.definition, nodes), agent_types, complete=False, callbacks=callbacks)
        self._trigger(WorkflowNodeUpdated, ctx, node=node, definition_version=self.definition_version + 1)

    def remove_node(self, ctx: CommandContext, node_id: str) -> None:
        self._require_live()
        self._node_index(node_id)
        users = [f"{e.source} -> {e.target}" for e in self.definition.edges if node_id in (e.source, e.target)]
        if users:
            raise Conflict(f"node '{node_id}' is still referenced by edges: {', '.join(users)}")
        if len(self.definition.nodes) == 1:
            raise Conflict("a workflow keeps at least one node")
        self._trigger(WorkflowNodeRemoved, ctx, node_id=node_id, definition_version=self.definition_version + 1)

    def add_edge(self, ctx: CommandContext, edge: Edge) -> None:
        self._require_live()
        if any((e.source, e.target) == (edge.source, edge.target) for e in self.definition.edges):
            raise Conflict(f"edge {edge.source} -> {edge.target} already exists")
        _check(WorkflowDefinition(nodes=self.definition.nodes, edges=[*self.definition.edges, edge]), complete=False)
        self._trigger(WorkflowEdgeAdded, ctx, edge=edge, definition_version=self.definition_version + 1)

    def remove_edge(self, ctx: CommandContext, source: str, target: str) -> None:
        self._require_live()
        if not any((e.source, e.target) == (source, target) for e in self.definition.edges):
            raise NotFound(f"edge {source} -> {target} not found")
        remaining = [e for e in self.definition.edges if (e.source, e.target) != (source, target)]
        _check(WorkflowDefinition(nodes=self.definition.nodes, edges=remaining), complete=False)
        self._trigger(
            WorkflowEdgeRemoved, ctx, source=source, target=target, definition_version=self.definition_version + 1
        )

    def _node_index(self, node_id: str) -> int:
        for i, n in enumerate(self.definition.nodes):
            if n.id == node_id:
                return i
        raise NotFound(f"node '{node_id}' not found in workflow {self.id}")

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
        elif isinstance(event, WorkflowNodeAdded):
            self.definition = _with_nodes(self.definition, [*self.definition.nodes, event.node])
            self.definition_version = event.definition_version
        elif isinstance(event, WorkflowNodeUpdated):
            nodes = [event.node if n.id == event.node.id else n for n in self.definition.nodes]
            self.definition = _with_nodes(self.definition, nodes)
            self.definition_version = event.definition_version
        elif isinstance(event, WorkflowNodeRemoved):
            self.definition = _with_nodes(self.definition, [n for n in self.definition.nodes if n.id != event.node_id])
            self.definition_version = event.definition_version
        elif isinstance(event, WorkflowEdgeAdded):
            self.definition = msgspec.structs.replace(self.definition, edges=[*self.definition.edges, event.edge])
            self.definition_version = event.definition_version
        elif isinstance(event, WorkflowEdgeRemoved):
            edges = [e for e in self.definition.edges if (e.source, e.target) != (event.source, event.target)]
            self.definition = msgspec.structs.replace(self.definition, edges=edges)
            self.definition_version = event.definition_version
        elif isinstance(event, WorkflowDeleted):
            self.deleted = True
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Workflow cannot apply {type(event).__name__}")


def _with_nodes(definition: WorkflowDefinition, nodes: list[Node]) -> WorkflowDefinition:
    return msgspec.structs.replace(definition, nodes=nodes)  # edges and timeout stay


def _check(
    definition: WorkflowDefinition,
    agent_types: Iterable[str] | None = None,
    *,
    complete: bool = True,
    callbacks: Collection[str] | None = None,
) -> None:
    found = problems(definition, agent_types, complete=complete, callbacks=callbacks)
    if found:
        raise ValidationFailed([type(p)(f"definition.{p.field}", p.message, p.code) for p in found])
