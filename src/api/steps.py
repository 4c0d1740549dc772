"""GET /api/v1/executions/{id}/steps: a run as a list of steps (the CMBAgent reference's view).

A step is a node of the run's workflow. Status and attempts come from the log (no lag);
times and cost come from the timeline and metrics read models, so they trail the log by the
projectors' lag (null until the projector has seen the node).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from domain.scheduling import NodeStatus
from projections.execution_metrics import read_metrics
from projections.timeline import node_times


class StepOut(msgspec.Struct):
    step_number: int | None  # 1, 2, ... in the order the nodes ran; null for one that has not
    node_id: str
    name: str | None
    type: str
    agent_type: str | None
    status: str
    attempts: int
    retry_count: int  # attempts after the first
    cost_usd: float
    scheduled_at: datetime | None
    started_at: datetime | None  # when a worker first picked it up (task nodes)
    completed_at: datetime | None


class StepController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}"
    tags = ["executions"]

    @get("/steps", operation_id="listExecutionSteps")
    async def steps(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[StepOut]:
        """Every node of the run as a step: a branch's carried nodes first, then the nodes that
        ran in the order they first ran (``step_number``), then those that have not, in
        workflow order (no number); each with status, attempts, retries, cost and times."""
        bind_correlation(execution_id)
        tenant = principal.tenant_id
        ex = await anyio.to_thread.run_sync(lambda: ctx.executions.get(tenant, execution_id))
        async with ctx.pool.connection() as conn:
            times = await node_times(conn, tenant, execution_id)
            costs = {s.key: s.cost_usd for s in (await read_metrics(conn, tenant, execution_id)).by_node}
        # A branch's carried nodes have a status but were never scheduled in this run.
        first = ex.first_scheduled  # node -> the version it was first scheduled at
        ran = sorted((n for n in ex.definition.nodes if n.id in ex.nodes), key=lambda n: first.get(n.id, 0))
        waiting = [n for n in ex.definition.nodes if n.id not in ex.nodes]
        steps = []
        for number, node in enumerate([*ran, *waiting], start=1):
            attempts = ex.attempts.get(node.id, 0)
            when = times.get(node.id)
            steps.append(
                StepOut(
                    step_number=number if node.id in ex.nodes else None,
                    node_id=node.id,
                    name=node.name,
                    type=node.type,
                    agent_type=node.agent_type,
                    status=ex.nodes.get(node.id, NodeStatus.PENDING).value,
                    attempts=attempts,
                    retry_count=max(attempts - 1, 0),
                    cost_usd=float(costs.get(node.id, 0.0)),
                    scheduled_at=when.scheduled_at if when else None,
                    started_at=when.started_at if when else None,
                    completed_at=when.completed_at if when else None,
                )
            )
        return Page(items=steps[offset : offset + limit], total=len(steps), limit=limit, offset=offset)
