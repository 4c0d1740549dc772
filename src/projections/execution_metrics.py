"""Read model of what executions cost and how long their parts took (schema ``rm_metrics``).

(The Prometheus metrics of the projectors themselves live in ``projections.metrics``.)

Three tables, aggregated with SQL when asked:

- ``runs``: the execution's span (started, ended, final status) and which nodes the engine
  settles by itself (start, end, and decisions it evaluates): those do no work, so they get
  no node runs and never show up as the fastest node.
- ``node_runs``: one row per attempt of a working node (task, approval, external decision):
  scheduled, picked up by a worker (``node_started``), finished with its status. The
  duration of an attempt runs from its start, or from its scheduling when no worker
  reported a start (an approval waits for a person from the moment it is asked).
- ``telemetry``: one row per glass-box record, with the agent type of the node's latest
  run at the time it was recorded (a node keeps its agent type across attempts).

Timestamps come from the events only, so a rebuild from the log yields the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.timeline import span_ms

_RUN = " WHERE tenant_id = %s AND execution_id = %s AND node_id = %s AND attempt = %s"


async def _started(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    nodes = e.payload["definition"]["nodes"]
    settled = [
        n["id"]
        for n in nodes
        if n.get("type", "task") in ("start", "end")
        or (n.get("type") == "decision" and not (n.get("config") or {}).get("external"))
    ]
    await cur.execute(
        "INSERT INTO runs (tenant_id, execution_id, started_at, engine_nodes) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (e.tenant_id, e.stream_id, e.occurred_at, Jsonb(settled)),
    )


async def _scheduled(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO node_runs (tenant_id, execution_id, node_id, attempt, node_type, agent_type,"
        " scheduled_at, status) SELECT %s, %s, %s, %s, %s, %s, %s, 'scheduled'"
        " WHERE NOT EXISTS (SELECT 1 FROM runs WHERE tenant_id = %s AND execution_id = %s"
        " AND engine_nodes ? %s) ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            p["node_id"],
            p.get("attempt", 1),
            p.get("node_type", "task"),
            p.get("agent_type"),
            e.occurred_at,
            e.tenant_id,
            e.stream_id,
            p["node_id"],
        ),
    )


async def _node_started(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "UPDATE node_runs SET started_at = %s,"
        " status = CASE WHEN finished_at IS NULL THEN 'running' ELSE status END" + _RUN,
        (e.occurred_at, e.tenant_id, e.stream_id, p["node_id"], p.get("attempt", 1)),
    )


def _finished(status: str) -> Handler:
    async def handler(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        p = e.payload
        final = "timed_out" if p.get("timed_out") else status
        await cur.execute(
            "UPDATE node_runs SET finished_at = %s, status = %s,"
            " duration_ms = round((extract(epoch FROM %s - coalesce(started_at, scheduled_at)) * 1000)::numeric, 3)"
            + _RUN,
            (e.occurred_at, final, e.occurred_at, e.tenant_id, e.stream_id, p["node_id"], p.get("attempt", 1)),
        )

    return handler


def _ended(status: str) -> Handler:
    async def handler(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        await cur.execute(
            "UPDATE runs SET ended_at = %s, status = %s WHERE tenant_id = %s AND execution_id = %s",
            (e.occurred_at, status, e.tenant_id, e.stream_id),
        )

    return handler


async def _telemetry(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    execution_id = UUID(str(p["execution_id"]))
    node_id = p.get("node_id")
    row: dict[str, Any] = {
        "tenant_id": e.tenant_id,
        "execution_id": execution_id,
        "event_id": e.event_id,
        "notification_id": e.notification_id,
        "kind": e.kind.removeprefix("telemetry."),
        "node_id": node_id,
        "model": p.get("model"),
        "tool": p.get("tool"),
        "input_tokens": p.get("input_tokens", 0),
        "output_tokens": p.get("output_tokens", 0),
        "cost_usd": p.get("cost_usd", 0.0),
        "duration_ms": p.get("duration_ms"),
        "occurred_at": e.occurred_at,
    }
    await cur.execute(
        "INSERT INTO telemetry (tenant_id, execution_id, event_id, notification_id, kind, node_id, agent_type,"
        " model, tool, input_tokens, output_tokens, cost_usd, duration_ms, occurred_at)"
        " VALUES (%(tenant_id)s, %(execution_id)s, %(event_id)s, %(notification_id)s, %(kind)s, %(node_id)s,"
        " (SELECT agent_type FROM node_runs WHERE tenant_id = %(tenant_id)s AND execution_id = %(execution_id)s"
        "  AND node_id = %(node_id)s ORDER BY attempt DESC LIMIT 1),"
        " %(model)s, %(tool)s, %(input_tokens)s, %(output_tokens)s, %(cost_usd)s, %(duration_ms)s, %(occurred_at)s)"
        " ON CONFLICT (tenant_id, event_id) DO NOTHING",
        row,
    )


class MetricsProjection(Projection):
    name: ClassVar[str] = "metrics"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS runs ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, started_at timestamptz NOT NULL,"
        " ended_at timestamptz, status text, engine_nodes jsonb NOT NULL,"
        " PRIMARY KEY (tenant_id, execution_id))",
        "CREATE TABLE IF NOT EXISTS node_runs ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, node_id text NOT NULL, attempt integer NOT NULL,"
        " node_type text NOT NULL, agent_type text, scheduled_at timestamptz NOT NULL, started_at timestamptz,"
        " finished_at timestamptz, status text NOT NULL, duration_ms numeric,"
        " PRIMARY KEY (tenant_id, execution_id, node_id, attempt))",
        "CREATE TABLE IF NOT EXISTS telemetry ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, event_id uuid NOT NULL,"
        " notification_id bigint NOT NULL, kind text NOT NULL, node_id text, agent_type text, model text,"
        " tool text, input_tokens bigint NOT NULL, output_tokens bigint NOT NULL, cost_usd numeric NOT NULL,"
        " duration_ms numeric, occurred_at timestamptz NOT NULL,"
        " PRIMARY KEY (tenant_id, event_id))",
        "CREATE INDEX IF NOT EXISTS telemetry_execution ON telemetry (tenant_id, execution_id, notification_id)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "execution.started": _started,
        "execution.node_scheduled": _scheduled,
        "execution.node_started": _node_started,
        "execution.node_completed": _finished("succeeded"),
        "execution.node_failed": _finished("failed"),
        "execution.succeeded": _ended("succeeded"),
        "execution.failed": _ended("failed"),
        "execution.cancelled": _ended("cancelled"),
        "execution.timed_out": _ended("timed_out"),
        "telemetry.llm_call": _telemetry,
        "telemetry.tool_call": _telemetry,
        "telemetry.thought": _telemetry,
    }


@dataclass(frozen=True)
class Totals:
    cost_usd: float
    input_tokens: int
    output_tokens: int
    llm_calls: int
    tool_calls: int
    thoughts: int
    duration_ms: float | None  # the execution's span, to now while it goes on


@dataclass(frozen=True)
class Slice:
    """The figures of one node or one agent type."""

    key: str | None
    agent_type: str | None
    nodes: int
    attempts: int
    duration_ms: float  # summed over the finished attempts
    cost_usd: float  # every record: LLM and tool calls
    input_tokens: int
    output_tokens: int
    llm_calls: int


@dataclass(frozen=True)
class ModelUsage:
    model: str
    calls: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    duration_ms: float


@dataclass(frozen=True)
class NodeDuration:
    node_id: str
    attempt: int
    agent_type: str | None
    duration_ms: float


@dataclass(frozen=True)
class ExecutionMetrics:
    totals: Totals
    by_node: list[Slice]
    by_agent: list[Slice]
    by_model: list[ModelUsage]
    slowest_node: NodeDuration | None
    fastest_node: NodeDuration | None


_S = MetricsProjection.schema()
_MINE = " WHERE tenant_id = %(t)s AND execution_id = %(e)s"
# Node runs and telemetry records as one set of facts, so that a node (or agent type)
# with records but no run, or runs but no records, is still counted once.
_FACTS = (
    "WITH facts AS ("
    " SELECT node_id, agent_type, 1 AS attempts, coalesce(duration_ms, 0) AS duration_ms, 0::numeric AS cost_usd,"
    f" 0::bigint AS input_tokens, 0::bigint AS output_tokens, 0 AS llm_calls FROM {_S}.node_runs{_MINE}"
    " UNION ALL"
    " SELECT node_id, agent_type, 0, 0, cost_usd, input_tokens, output_tokens, (kind = 'llm_call')::int"
    f" FROM {_S}.telemetry{_MINE})"
)
_SLICE = (
    " count(DISTINCT node_id) FILTER (WHERE attempts > 0) AS nodes, sum(attempts) AS attempts,"
    " sum(duration_ms) AS duration_ms, sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,"
    " sum(output_tokens) AS output_tokens, sum(llm_calls) AS llm_calls FROM facts"
)


def _slice(r: DictRow) -> Slice:
    return Slice(
        r["key"],
        r["agent_type"],
        int(r["nodes"]),
        int(r["attempts"]),
        float(r["duration_ms"]),
        float(r["cost_usd"]),
        int(r["input_tokens"]),
        int(r["output_tokens"]),
        int(r["llm_calls"]),
    )


async def _one_node(conn: AsyncConnection[DictRow], args: dict[str, Any], order: str) -> NodeDuration | None:
    cur = await conn.execute(
        f"SELECT node_id, attempt, agent_type, duration_ms FROM {_S}.node_runs{_MINE}"
        f" AND status = 'succeeded' ORDER BY duration_ms {order}, node_id, attempt LIMIT 1",
        args,
    )
    r = await cur.fetchone()
    return NodeDuration(r["node_id"], r["attempt"], r["agent_type"], float(r["duration_ms"])) if r else None


async def read_metrics(conn: AsyncConnection[DictRow], tenant_id: str, execution_id: UUID) -> ExecutionMetrics:
    args: dict[str, Any] = {"t": tenant_id, "e": execution_id}
    cur = await conn.execute(
        "SELECT coalesce(sum(cost_usd), 0) AS cost_usd, coalesce(sum(input_tokens), 0) AS input_tokens,"
        " coalesce(sum(output_tokens), 0) AS output_tokens,"
        " count(*) FILTER (WHERE kind = 'llm_call') AS llm_calls,"
        " count(*) FILTER (WHERE kind = 'tool_call') AS tool_calls,"
        " count(*) FILTER (WHERE kind = 'thought') AS thoughts,"
        f" (SELECT started_at FROM {_S}.runs{_MINE}) AS started_at,"
        f" (SELECT ended_at FROM {_S}.runs{_MINE}) AS ended_at"
        f" FROM {_S}.telemetry{_MINE}",
        args,
    )
    t = await cur.fetchone()
    assert t is not None  # an aggregate without GROUP BY always answers one row
    totals = Totals(
        float(t["cost_usd"]),
        int(t["input_tokens"]),
        int(t["output_tokens"]),
        int(t["llm_calls"]),
        int(t["tool_calls"]),
        int(t["thoughts"]),
        span_ms(t["started_at"], t["ended_at"]),
    )
    cur = await conn.execute(
        f"{_FACTS} SELECT node_id AS key, (array_agg(agent_type) FILTER (WHERE agent_type IS NOT NULL))[1]"
        f" AS agent_type,{_SLICE} WHERE node_id IS NOT NULL GROUP BY node_id ORDER BY node_id",
        args,
    )
    by_node = [_slice(r) for r in await cur.fetchall()]
    cur = await conn.execute(
        f"{_FACTS} SELECT agent_type AS key, agent_type,{_SLICE} GROUP BY agent_type ORDER BY agent_type NULLS LAST",
        args,
    )
    by_agent = [_slice(r) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT model, count(*) AS calls, sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,"
        " sum(output_tokens) AS output_tokens, coalesce(sum(duration_ms), 0) AS duration_ms"
        f" FROM {_S}.telemetry{_MINE} AND kind = 'llm_call' GROUP BY model ORDER BY model",
        args,
    )
    by_model = [
        ModelUsage(
            r["model"],
            int(r["calls"]),
            float(r["cost_usd"]),
            int(r["input_tokens"]),
            int(r["output_tokens"]),
            float(r["duration_ms"]),
        )
        for r in await cur.fetchall()
    ]
    return ExecutionMetrics(
        totals, by_node, by_agent, by_model, await _one_node(conn, args, "DESC"), await _one_node(conn, args, "ASC")
    )
