"""Branch trees and branch comparison (CMBAgent reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from commands import forensics
from domain.errors import FieldProblem, NotFound, ValidationFailed
from domain.execution import Execution
from domain.scheduling import NodeStatus
from domain.state_diff import StateDiff, diff, same
from projections.branches import BranchRow, lineage
from projections.execution_metrics import read_metrics


class Branch(msgspec.Struct):
    execution_id: UUID
    name: str | None
    hypothesis: str | None
    status: str | None  # from the executions read model (null until it has caught up)
    parent_execution_id: UUID | None
    forked_from_event_id: UUID | None
    mode: str | None
    created_at: datetime
    children: list[Branch]


class BranchTree(msgspec.Struct):
    execution_id: UUID  # the one asked about
    root: Branch
    total: int


class EventRef(msgspec.Struct):
    event_id: UUID
    kind: str
    execution_id: UUID
    version: int
    occurred_at: datetime


class StepSide(msgspec.Struct):
    status: str
    attempts: int
    output: Any
    cost_usd: float


class StepDifference(msgspec.Struct):
    node_id: str
    a: StepSide
    b: StepSide
    differs: list[str]  # which of status, output, cost differ


class BranchSummary(msgspec.Struct):
    """One side of a comparison in the CMBAgent reference's terms: a step is a node."""

    branch_id: UUID  # the execution
    name: str | None  # the branch's name (none for a run that is not a fork)
    total_steps: int  # nodes in the workflow
    completed_steps: int  # nodes that succeeded
    total_cost: float  # USD, from the run's telemetry
    final_status: str  # the execution's status now


class BranchComparison(msgspec.Struct):
    a: UUID
    b: UUID
    common_ancestors: list[EventRef]
    diverged_at: dict[str, list[EventRef]]  # "a" / "b": the first events on each side
    steps: list[StepDifference]
    final_state_diff: StateDiff
    branch_a: BranchSummary
    branch_b: BranchSummary


def _ref(e: Any) -> EventRef:
    return EventRef(e.event_id, e.kind, e.stream_id, e.version, e.occurred_at)


def _tree(rows: list[BranchRow]) -> tuple[Branch, int]:
    nodes = {
        r.execution_id: Branch(
            r.execution_id,
            r.name,
            r.hypothesis,
            r.status,
            r.parent_execution_id,
            r.from_event_id,
            r.mode,
            r.created_at,
            [],
        )
        for r in rows
    }
    root = None
    for r in rows:
        parent = nodes.get(r.parent_execution_id) if r.parent_execution_id else None
        if parent is None:
            root = nodes[r.execution_id]
        else:
            parent.children.append(nodes[r.execution_id])
    assert root is not None
    return root, len(nodes)


class BranchController(Controller):
    path = "/api/v1"
    tags = ["branches"]

    @get("/executions/{execution_id:uuid}/branches", operation_id="getBranchTree")
    async def tree(
        self, execution_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> BranchTree:
        """The whole fork tree of the lineage this execution belongs to, from its root, with
        each branch's name, hypothesis, status, parent and children (branches read model)."""
        bind_correlation(execution_id)
        async with ctx.pool.connection() as conn:
            rows = await lineage(conn, principal.tenant_id, execution_id)
        if rows is None:
            raise NotFound(f"execution {execution_id} not found")
        root, total = _tree(rows)
        return BranchTree(execution_id, root, total)

    @get("/branches/compare", operation_id="compareBranches")
    async def compare(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        a: FromQuery[UUID | None] = None,
        b: FromQuery[UUID | None] = None,
        branch_a: FromQuery[UUID | None] = None,
        branch_b: FromQuery[UUID | None] = None,
    ) -> BranchComparison:
        """Two branches side by side: their common ancestor events, where each diverged,
        per-node differences (status, output, cost), the diff of their final states, and a
        summary of each (``branch_a`` / ``branch_b``: steps, completed steps, cost, status).
        The executions are ``a`` and ``b``, or ``branch_a`` and ``branch_b`` (the CMBAgent
        reference's names)."""
        a, b = _side("a", a, branch_a), _side("b", b, branch_b)
        if a == b:
            raise ValidationFailed([FieldProblem("b", "compare two different executions", "same")])
        tenant = principal.tenant_id
        ex_a, ex_b = await anyio.to_thread.run_sync(
            lambda: (ctx.executions.get(tenant, a), ctx.executions.get(tenant, b))
        )
        assert ex_a.last_event_id is not None and ex_b.last_event_id is not None
        async with ctx.pool.connection() as conn:
            common = await forensics.common_ancestors(conn, tenant, ex_a.last_event_id, ex_b.last_event_id)
            ids = [e.event_id for e in common]
            side_a = await forensics.divergence(conn, tenant, ids, ex_a.last_event_id) if ids else []
            side_b = await forensics.divergence(conn, tenant, ids, ex_b.last_event_id) if ids else []
            metrics_a, metrics_b = await read_metrics(conn, tenant, a), await read_metrics(conn, tenant, b)
        costs_a = {s.key: s.cost_usd for s in metrics_a.by_node}
        costs_b = {s.key: s.cost_usd for s in metrics_b.by_node}
        return BranchComparison(
            a,
            b,
            [_ref(e) for e in common],
            {"a": [_ref(e) for e in side_a], "b": [_ref(e) for e in side_b]},
            _steps(ex_a, ex_b, costs_a, costs_b),
            diff(ex_a.state, ex_b.state),
            _summary(ex_a, metrics_a.totals.cost_usd),
            _summary(ex_b, metrics_b.totals.cost_usd),
        )


def _side(name: str, value: UUID | None, alias: UUID | None) -> UUID:
    """``a`` or its alias ``branch_a`` (likewise ``b``): exactly one of the two."""
    if value is not None and alias is not None:
        raise ValidationFailed([FieldProblem(f"branch_{name}", f"send {name} or branch_{name}, not both", "ambiguous")])
    found = value if value is not None else alias
    if found is None:
        raise ValidationFailed([FieldProblem(name, f"name the execution as {name} or branch_{name}", "required")])
    return found


def _summary(ex: Execution, cost: float) -> BranchSummary:
    completed = sum(1 for n in ex.definition.nodes if ex.nodes.get(n.id) is NodeStatus.SUCCEEDED)
    name = ex.fork.name if ex.fork else None
    return BranchSummary(ex.id, name, len(ex.definition.nodes), completed, float(cost), ex.status.value)


Costs = dict[str | None, float]


def _steps(a: Execution, b: Execution, costs_a: Costs, costs_b: Costs) -> list[StepDifference]:
    def side(ex: Execution, costs: Costs, node_id: str) -> StepSide:
        outputs = ex.state.get("outputs") or {}
        status = ex.nodes.get(node_id, NodeStatus.PENDING).value
        return StepSide(status, ex.attempts.get(node_id, 0), outputs.get(node_id), float(costs.get(node_id, 0.0)))

    steps = []
    for node in a.definition.nodes:
        sa, sb = side(a, costs_a, node.id), side(b, costs_b, node.id)
        differs = [
            name
            for name, differ in (
                ("status", sa.status != sb.status),
                ("output", not same(sa.output, sb.output)),
                ("cost", abs(sa.cost_usd - sb.cost_usd) > 1e-12),
            )
            if differ
        ]
        steps.append(StepDifference(node.id, sa, sb, differs))
    return steps
