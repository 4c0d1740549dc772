"""``min_position`` on queries: read-your-writes across processes and replicas.

A client passes the ``Quipu-Log-Position`` of its command as ``?min_position=N`` to any
operation listed in ``READS``; before the handler runs, the request waits (up to
``QUIPU_MIN_POSITION_WAIT_MS``) until every read model that operation reads has applied
position N, then the handler reads. When the wait runs out the answer is 503 with
``Retry-After`` and code ``not_yet_applied`` ("not yet", not "never": the projector is
behind or stopped). A value that is not a whole number from 0 to 2^63-1 is a 422, and so is
a position the log has not reached (``beyond_head``: no command returned it, and waiting
for it would only end in the 503).

Why one table here and not a parameter in every handler: the mapping from operation to
read models is the one fact each operation adds; the parsing, the wait, the problem and the
document are the same for all of them, so they live once (the wait itself, with its SQL, is
``projections.freshness``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import State
from litestar.openapi.spec import Operation, Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIType

from api.context import ApiContext
from api.problems import Problem, problem_response
from commands.log import head
from domain.errors import FieldProblem, ValidationFailed
from projections.freshness import MAX_WAIT_MS, NotYetApplied, wait_until_applied

NAME = "min_position"
BEYOND = "beyond_head"
_LARGEST = (1 << 63) - 1  # notification ids are bigint

_KNOWLEDGE = ("knowledge",)
_SESSIONS = ("memory_sessions",)
# Operation id -> the read models (projection names) it reads.
READS: dict[str, tuple[str, ...]] = {
    "listWorkflows": ("workflows",),
    "listExecutions": ("executions",),
    "listCheckpoints": ("checkpoints",),
    "getCheckpoint": ("checkpoints",),
    "compareBranches": ("metrics",),  # per-node costs; the rest of a comparison reads the log
    "getBranchTree": ("branches", "metrics"),
    "getExecutionTimeline": ("timeline",),
    "getExecutionMetrics": ("metrics",),
    "listExecutionSteps": ("metrics", "timeline"),
    "listArtifacts": _KNOWLEDGE,
    "listNotes": _KNOWLEDGE,
    "listEdges": _KNOWLEDGE,
    "listEdgesByParticipant": _KNOWLEDGE,
    "traverseEdges": _KNOWLEDGE,
    "searchMemory": ("memory_search",),
    "searchNotes": ("memory_search",),
    "searchArtifacts": ("memory_search",),
    "listScopes": _SESSIONS,
    "listTrajectoryScopes": _SESSIONS,
    "listTrajectories": _SESSIONS,
    "listTrajectoryChildren": _SESSIONS,
    "listTurns": _SESSIONS,
    "listScopeTurns": _SESSIONS,
    "listTrajectorySummarizationPolicies": ("summarization",),
    "listSummarizationRequests": ("summarization",),
    "listAgents": ("coordination",),
    "listLocks": ("coordination",),
    "listAgentTypes": ("agent_types", "coordination"),
    "listMessages": ("messages",),
    "listCallbacks": ("callbacks",),
    "listCallbackDeliveries": ("callbacks",),
    "listTenants": ("tenants",),
}


def _parse(values: list[str]) -> int:
    if len(values) != 1:
        raise ValidationFailed([FieldProblem(NAME, "give `min_position` once", "invalid")])
    text = values[0].strip()
    if not text.isdigit() or int(text) > _LARGEST:
        raise ValidationFailed(
            [FieldProblem(NAME, "`min_position` is a log position: a whole number from 0 to 2^63-1", "invalid")]
        )
    return int(text)


async def wait_for_min_position(request: Request[Any, Any, State], ctx: ApiContext) -> Response[Problem] | None:
    """The before-request step: returns a 503 problem when the read models stay behind."""
    values = request.query_params.getall(NAME, [])
    if not values:
        return None
    projections = READS.get(request.route_handler.operation_id or "")  # type: ignore[arg-type]
    if projections is None:
        return None  # not a read-model query: the parameter is not part of this operation
    position = _parse(values)
    if position > 0:
        async with ctx.pool.connection() as conn:  # the primary's log: where every position is made
            reached = await head(conn)
        if position > reached:
            raise ValidationFailed(
                [FieldProblem(NAME, f"the log has not reached {position} (it is at {reached})", BEYOND)]
            )
    try:
        await wait_until_applied(ctx.read_models, projections, position, ctx.min_position_wait_ms)
    except NotYetApplied as late:
        return problem_response(
            request,
            503,
            f"{late}; retry after Retry-After seconds, or later",
            code="not_yet_applied",
            headers={"Retry-After": "1"},
        )
    return None


_DESCRIPTION = (
    "Read-your-writes: a `Quipu-Log-Position` from a command's response. The query first waits "
    f"(at most QUIPU_MIN_POSITION_WAIT_MS, default 5,000 ms, at most {MAX_WAIT_MS:,} ms) until the "
    "read models it reads have applied this position; if they have not by then, the answer is 503 "
    "with `Retry-After` and type `.../problems/not_yet_applied`."
)
_NOTE = (
    "\n\n`min_position`: wait until the read models this query reads ({models}) have applied a log "
    "position (`Quipu-Log-Position` of a command), then read; 503 `not_yet_applied` with `Retry-After` "
    "when they have not within the bound. 422 field error code of `min_position` that the schema cannot "
    f"state: `{BEYOND}`: the log has not reached this position (no command returned it)."
)


def document(op: Operation) -> None:
    """Adds the parameter and its 503 to a listed operation of the OpenAPI document."""
    models = READS.get(op.operation_id or "")
    if models is None:
        return
    schema = Schema(type=OpenAPIType.INTEGER, minimum=0, maximum=_LARGEST)
    parameter = Parameter(name=NAME, param_in="query", required=False, schema=schema, description=_DESCRIPTION)
    op.parameters = [*(op.parameters or []), parameter]
    op.description = (op.description or "") + _NOTE.format(models=", ".join(models))
