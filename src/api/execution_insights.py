"""/api/v1/executions/{id}/timeline and /metrics: what happened in a run, and what it cost
(Analemma OS and CMBAgent references). Both are served from read models, so they trail the
log by the projectors' lag; the execution's existence is checked against the log itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Limit, Offset
from commands.as_of import parse_point
from domain.errors import FieldProblem, ValidationFailed
from projections.execution_metrics import ModelUsage, NodeDuration, Slice, Totals
from projections.timeline import EVENT_TYPES, TYPE_ALIASES, TimelineFilter

TimelineAsOf = Annotated[
    str | None,
    QueryParameter(
        max_length=100,
        description="the timeline as it was right after this event (id or version of the execution) or at this time",
    ),
]


class TimelineItem(msgspec.Struct):
    event_id: UUID
    timestamp: datetime
    event_type: str
    kind: str
    node_id: str | None
    data: dict[str, Any]


class TimelineSummaryOut(msgspec.Struct):
    total_events: int
    counts_by_type: dict[str, int]
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: float | None


class TimelineOut(msgspec.Struct):
    execution_id: UUID
    filtered: bool
    timeline: list[TimelineItem]
    summary: TimelineSummaryOut
    limit: int
    offset: int
    as_of: str | None = None


class NodeMetrics(msgspec.Struct):
    node_id: str
    agent_type: str | None
    attempts: int
    duration_ms: float
    cost_usd: float
    input_tokens: int
    output_tokens: int
    llm_calls: int


class AgentMetrics(msgspec.Struct):
    agent_type: str | None
    nodes: int
    attempts: int
    duration_ms: float
    cost_usd: float
    input_tokens: int
    output_tokens: int
    llm_calls: int


class MetricsOut(msgspec.Struct):
    execution_id: UUID
    totals: Totals
    by_node: list[NodeMetrics]
    by_agent: list[AgentMetrics]
    by_model: list[ModelUsage]
    slowest_node: NodeDuration | None
    fastest_node: NodeDuration | None


def parse_filter(
    event_types: str | None, node: str | None, start_time: datetime | None, end_time: datetime | None
) -> TimelineFilter:
    """Times without a zone are taken as UTC; every problem is reported at once. An alias
    (``segment_start``, ``segment_end``, ``self_healing``) stands for the type it names."""
    problems: list[FieldProblem] = []
    asked = [t.strip() for t in (event_types or "").split(",") if t.strip()]
    wanted = tuple(dict.fromkeys(TYPE_ALIASES.get(t, t) for t in asked))
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        valid = ", ".join([*EVENT_TYPES, *TYPE_ALIASES])
        message = f"unknown event type(s) {', '.join(unknown)}; valid: {valid}"
        problems.append(FieldProblem("event_types", message, "unknown_event_type"))
    start, end = (t.replace(tzinfo=UTC) if t and t.tzinfo is None else t for t in (start_time, end_time))
    if start and end and start > end:
        problems.append(FieldProblem("start_time", "start_time is after end_time", "invalid_range"))
    if problems:
        raise ValidationFailed(problems)
    return TimelineFilter(wanted, node, start, end)


class ExecutionInsightsController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}"
    tags = ["executions"]

    @get("/timeline", operation_id="getExecutionTimeline")
    async def timeline(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        event_types: FromQuery[str | None] = None,
        node: FromQuery[str | None] = None,
        start_time: FromQuery[datetime | None] = None,
        end_time: FromQuery[datetime | None] = None,
        include_state: FromQuery[bool] = False,
        limit: Limit = 100,
        offset: Offset = 0,
        as_of: TimelineAsOf = None,
    ) -> TimelineOut:
        """The run's events and glass-box records in log order, filtered by comma-separated
        ``event_types`` (also the aliases ``segment_start``, ``segment_end``, ``self_healing``),
        ``node`` and an inclusive ``start_time``/``end_time`` window. The
        summary counts everything the filters match; checkpoint state only with ``include_state``.
        ``as_of`` (an event id or version of the execution, or a timestamp) gives the timeline
        as it was then: rows up to that event in log order, or up to that time."""
        bind_correlation(execution_id)
        wanted = parse_filter(event_types, node, start_time, end_time)
        point = parse_point(as_of) if as_of is not None else None
        found = await ctx.execution_reads.timeline(
            principal.tenant_id,
            execution_id,
            wanted,
            as_of=as_of,
            at=point.at if point else None,
            include_state=include_state,
            limit=limit,
            offset=offset,
        )
        s = found.summary
        return TimelineOut(
            execution_id=execution_id,
            filtered=wanted.active,
            timeline=[
                TimelineItem(e.event_id, e.occurred_at, e.event_type, e.kind, e.node_id, e.data) for e in found.entries
            ],
            summary=TimelineSummaryOut(s.total_events, s.counts_by_type, s.started_at, s.ended_at, s.duration_ms),
            limit=limit,
            offset=offset,
            as_of=as_of,
        )

    @get("/metrics", operation_id="getExecutionMetrics")
    async def metrics(
        self, execution_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> MetricsOut:
        """Cost, tokens and durations of the run: totals, and by node, agent type and model;
        the slowest and fastest completed node attempts."""
        bind_correlation(execution_id)
        m = await ctx.execution_reads.metrics(principal.tenant_id, execution_id)
        return MetricsOut(
            execution_id=execution_id,
            totals=m.totals,
            by_node=[_node(s) for s in m.by_node],
            by_agent=[_agent(s) for s in m.by_agent],
            by_model=m.by_model,
            slowest_node=m.slowest_node,
            fastest_node=m.fastest_node,
        )


def _node(s: Slice) -> NodeMetrics:
    return NodeMetrics(
        s.key or "", s.agent_type, s.attempts, s.duration_ms, s.cost_usd, s.input_tokens, s.output_tokens, s.llm_calls
    )


def _agent(s: Slice) -> AgentMetrics:
    return AgentMetrics(
        s.agent_type, s.nodes, s.attempts, s.duration_ms, s.cost_usd, s.input_tokens, s.output_tokens, s.llm_calls
    )
