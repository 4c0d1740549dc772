"""Branching an execution: resume from a checkpoint, play
from a node, counterfactual runs, and which nodes a branch can start from.

The reference APIs' spellings are accepted too: ``branch_name`` (CMBAgent) for ``name``, and
``skip_failed_segment`` (Analemma OS) for ``skip_failed_node`` (either one true skips).
Sending both ``name`` and ``branch_name`` is a 422 (``ambiguous``)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.executions import ExecutionOut, execution_out
from api.pagination import created_headers
from commands.forks import ForkService
from domain.errors import FieldProblem, ValidationFailed
from domain.execution import Execution
from domain.scheduling import NodeStatus

Name = Annotated[str, msgspec.Meta(max_length=200)]
Hypothesis = Annotated[str, msgspec.Meta(max_length=2000)]


class _Named(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | None = None
    branch_name: Name | None = None  # the CMBAgent reference's name for ``name``
    hypothesis: Hypothesis | None = None

    def chosen_name(self) -> str | None:
        if self.name is not None and self.branch_name is not None:
            raise ValidationFailed([FieldProblem("branch_name", "send name or branch_name, not both", "ambiguous")])
        return self.name if self.name is not None else self.branch_name


class ResumeRequest(_Named, kw_only=True):
    modified_state: dict[str, Any] = {}  # merged into the checkpoint's state (top-level keys)
    skip_failed_node: bool = False  # count the node that failed as done, with an empty output
    skip_failed_segment: bool = False  # the Analemma OS reference's name for ``skip_failed_node``


class PlayFromNodeRequest(_Named, kw_only=True):
    node_id: str
    modified_state: dict[str, Any] = {}


class CounterfactualRequest(_Named, kw_only=True):
    outputs: dict[str, dict[str, Any]]  # node -> the output it should have had


class ResumableNode(msgspec.Struct):
    node_id: str
    status: str
    checkpoint_id: UUID | None  # resume from here: the state right after this node
    can_play_from: bool  # it ran, so a branch can re-run it and what follows


class ResumableNodes(msgspec.Struct):
    execution_id: UUID
    items: list[ResumableNode]
    on_demand_checkpoints: list[UUID]


class ForkController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}"
    tags = ["branches"]

    async def _created(self, ctx: ApiContext, run: Any) -> Response[ExecutionOut]:
        branch: Execution = await anyio.to_thread.run_sync(run)
        headers = created_headers(f"/api/v1/executions/{branch.id}", created_now=True)
        return Response(execution_out(branch), status_code=201, headers=headers)

    @post("/checkpoints/{checkpoint_id:uuid}/resume", operation_id="resumeFromCheckpoint", opt={"scope": "write"})
    async def resume(
        self,
        execution_id: FromPath[UUID],
        checkpoint_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[ResumeRequest | None] = None,
    ) -> Response[ExecutionOut]:
        """Start a branch from a checkpoint: nodes finished there are carried, the rest runs
        again; its first event's parent is the checkpoint. The original is untouched.
        ``skip_failed_node`` (or ``skip_failed_segment``): the failed node counts as done."""
        body = data or ResumeRequest()
        bind_correlation(execution_id)
        name = body.chosen_name()
        return await self._created(
            ctx,
            lambda: ForkService(ctx.store).resume(
                principal.context(),
                execution_id,
                checkpoint_id,
                modified_state=body.modified_state,
                skip_failed_node=body.skip_failed_node or body.skip_failed_segment,
                name=name,
                hypothesis=body.hypothesis,
            ),
        )

    @post("/play-from-node", operation_id="playFromNode", opt={"scope": "write"})
    async def play_from_node(
        self,
        execution_id: FromPath[UUID],
        data: JSONBody[PlayFromNodeRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[ExecutionOut]:
        """Start a branch from the moment just before ``node_id`` first ran: it and everything
        after it run again. ``branch_name`` is accepted for ``name``."""
        bind_correlation(execution_id)
        name = data.chosen_name()
        return await self._created(
            ctx,
            lambda: ForkService(ctx.store).play_from_node(
                principal.context(),
                execution_id,
                data.node_id,
                modified_state=data.modified_state,
                name=name,
                hypothesis=data.hypothesis,
            ),
        )

    @post("/counterfactual", operation_id="startCounterfactual", opt={"scope": "write"})
    async def counterfactual(
        self,
        execution_id: FromPath[UUID],
        data: JSONBody[CounterfactualRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[ExecutionOut]:
        """What if these nodes had answered otherwise? A branch with their recorded outputs
        replaced, re-running only the nodes that depend on them."""
        bind_correlation(execution_id)
        name = data.chosen_name()
        return await self._created(
            ctx,
            lambda: ForkService(ctx.store).counterfactual(
                principal.context(), execution_id, data.outputs, name=name, hypothesis=data.hypothesis
            ),
        )

    @get("/resumable-nodes", operation_id="listResumableNodes")
    async def resumable(
        self, execution_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> ResumableNodes:
        """Where a branch can start: each node with the checkpoint taken after it completed, and
        whether it ran (play from it), and the checkpoints taken on demand. Paused and failure
        checkpoints are in the checkpoint list, with their type."""
        bind_correlation(execution_id)
        ex = await anyio.to_thread.run_sync(lambda: ctx.executions.get(principal.tenant_id, execution_id))
        after_node = {ref.node_id: cp for cp, ref in ex.checkpoints.items() if ref.type == "automatic"}
        items = [
            ResumableNode(
                node.id,
                ex.nodes.get(node.id, NodeStatus.PENDING).value,
                after_node.get(node.id),
                node.id in ex.first_scheduled,
            )
            for node in ex.definition.nodes
        ]
        on_demand = [cp for cp, ref in ex.checkpoints.items() if ref.type == "manual"]
        return ResumableNodes(ex.id, items, on_demand)
