"""/api/v1/workflows/{id}/nodes and /edges: partial edits, each a new definition version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

import anyio.to_thread
from litestar import Controller, Response, delete, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.workflows import IfMatch, WorkflowOut, etag_for, expected_version, workflow_out
from domain.aggregate import CommandContext
from domain.errors import FieldProblem, ValidationFailed
from domain.workflow import Workflow
from domain.workflow_graph import Edge, Node, WorkflowDefinition


class WorkflowPartsController(Controller):
    path = "/api/v1/workflows/{workflow_id:uuid}"
    tags = ["workflows"]

    async def _edit(
        self,
        ctx: ApiContext,
        principal: Principal,
        workflow_id: UUID,
        if_match: str | None,
        change: Callable[[Workflow, CommandContext], None],
    ) -> Response[WorkflowOut]:
        bind_correlation(workflow_id)
        workflow = await anyio.to_thread.run_sync(
            lambda: ctx.workflows.edit(
                principal.context(), workflow_id, change, expected_version=expected_version(if_match)
            )
        )
        return Response(workflow_out(workflow), headers=etag_for(workflow))

    @post("/nodes", operation_id="addWorkflowNode", opt={"scope": "write"}, status_code=200)
    async def add_node(
        self,
        workflow_id: FromPath[UUID],
        data: JSONBody[Node],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[WorkflowOut]:
        """Add a node; the result must still be a valid workflow."""
        agents = ctx.workflows.agent_types
        return await self._edit(
            ctx, principal, workflow_id, if_match, lambda w, c: w.add_node(c, data, agents, _callbacks(ctx, c, w, data))
        )

    @put("/nodes/{node_id:str}", operation_id="updateWorkflowNode", opt={"scope": "write"})
    async def update_node(
        self,
        workflow_id: FromPath[UUID],
        node_id: FromPath[str],
        data: JSONBody[Node],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[WorkflowOut]:
        """Replace one node (its id must match the path)."""
        if data.id != node_id:
            raise ValidationFailed(
                [FieldProblem("id", f"the node's id must be '{node_id}', as in the path", "id_mismatch")]
            )
        agents = ctx.workflows.agent_types
        return await self._edit(
            ctx,
            principal,
            workflow_id,
            if_match,
            lambda w, c: w.update_node(c, data, agents, _callbacks(ctx, c, w, data)),
        )

    @delete("/nodes/{node_id:str}", operation_id="removeWorkflowNode", opt={"scope": "write"}, status_code=200)
    async def remove_node(
        self,
        workflow_id: FromPath[UUID],
        node_id: FromPath[str],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[WorkflowOut]:
        """Remove a node; refused (409) while edges still reference it."""
        return await self._edit(ctx, principal, workflow_id, if_match, lambda w, c: w.remove_node(c, node_id))

    @post("/edges", operation_id="addWorkflowEdge", opt={"scope": "write"}, status_code=200)
    async def add_edge(
        self,
        workflow_id: FromPath[UUID],
        data: JSONBody[Edge],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[WorkflowOut]:
        """Add an edge; a cycle or a dangling end is refused with 422."""
        return await self._edit(ctx, principal, workflow_id, if_match, lambda w, c: w.add_edge(c, data))

    @delete("/edges", operation_id="removeWorkflowEdge", opt={"scope": "write"}, status_code=200)
    async def remove_edge(
        self,
        workflow_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
        source: Annotated[str, QueryParameter(name="from")],
        target: Annotated[str, QueryParameter(name="to")],
    ) -> Response[WorkflowOut]:
        """Remove the edge ``from`` -> ``to``."""
        return await self._edit(ctx, principal, workflow_id, if_match, lambda w, c: w.remove_edge(c, source, target))


def _callbacks(ctx: ApiContext, command: CommandContext, workflow: Workflow, node: Node) -> set[str] | None:
    """The callback ids the edited definition may name: the new node's if it is registered
    (looked up in the log), and those the other nodes named already (checked when they came)."""
    mine = ctx.workflows.callbacks_for(command.tenant_id, WorkflowDefinition(nodes=[node]))
    if mine is None:
        return None
    return mine | {n.callback_id for n in workflow.definition.nodes if n.callback_id is not None}
