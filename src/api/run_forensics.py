"""Blame and bisect a run (docs/architecture.md, API map): two questions about its past state.

Both read the write side through state-as-of and never re-run anything; the services are
``commands.blame`` and ``commands.bisect``, the rules ``domain.blame`` and ``domain.bisect``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from commands.bisect import BisectService
from commands.blame import BlameService, NodeReport
from domain.blame import MAX_POINTER_LENGTH, is_absent
from domain.conditions import MAX_LENGTH as MAX_CONDITION_LENGTH
from domain.envelope import EventEnvelope
from domain.state_diff import Change

Pointer = Annotated[
    str,
    QueryParameter(
        max_length=MAX_POINTER_LENGTH,
        description="an RFC 6901 JSON pointer into the run's state, e.g. /outputs/fetch/pages ('' is the whole state)",
    ),
]
ConditionText = Annotated[
    str,
    QueryParameter(
        min_length=1,
        max_length=MAX_CONDITION_LENGTH,
        description="a condition in the edges' grammar, e.g. pages > 2 and exists(summary)",
    ),
]


class WorkerReportOut(msgspec.Struct, kw_only=True):
    """The worker report a node's completion records."""

    node_id: str
    attempt: int
    reported_by: str  # the completion's actor (the worker's or approver's key)
    worker: str | None  # the name the worker gave when it took the task
    scheduled_event_id: UUID | None
    started_event_id: UUID | None


class BlameOut(msgspec.Struct, kw_only=True):
    execution_id: UUID
    path: str
    op: Literal["added", "modified", "removed"]
    value: Any | msgspec.UnsetType = msgspec.UNSET  # what the event set (absent when it removed the value)
    previous: Any | msgspec.UnsetType = msgspec.UNSET  # the value before it (absent when it added it)
    version: int  # the event's position in the run's stream
    changes: int  # how many of the run's events changed this value
    event: EventEnvelope
    node_id: str | None  # the node whose event it is (None for the run's own, e.g. its start)
    report: WorkerReportOut | None  # set when the event is a node's completion
    causal_path: list[EventEnvelope]  # from the run's first event to ``event`` along parent links
    causal_path_length: int  # hops


class BisectOut(msgspec.Struct, kw_only=True):
    execution_id: UUID
    condition: str
    found: bool  # false: the condition does not hold on the run's state now
    version: int | None  # the event's position in the run's stream
    event: EventEnvelope | None
    node_id: str | None
    changes: list[Change]  # what that event changed in the state, by JSON pointer
    probes: int  # state-as-of evaluations made
    probed_versions: list[int]  # in the order they were made
    max_probes: int  # 1 + ceil(log2(versions)): the most this run can take
    versions: int  # the run's events when the search began


def _report(report: NodeReport | None) -> WorkerReportOut | None:
    return None if report is None else WorkerReportOut(**report.__dict__)


class RunForensicsController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}"
    tags = ["time travel"]

    @get("/blame", operation_id="blameExecutionState")
    async def blame(
        self,
        execution_id: FromPath[UUID],
        path: Pointer,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> BlameOut:
        """The event that last set the part of the run's state ``path`` points at, as
        state-as-of sees it: of the states right after each of the run's events, the last
        event after which the value there differs from before (``op`` says whether it
        added, modified or removed it). With the node and the worker report behind it
        (attempt, reporting key, worker name, the scheduling and start events) and its causal
        path from the run's first event along the event DAG's parent links. A deleted run's
        history stays readable. 404 for an unknown run, or a path that never had a value;
        422 for a path that is not a JSON pointer."""
        bind_correlation(execution_id)
        found = await BlameService(ctx.pool, ctx.store).blame(principal.tenant_id, execution_id, path)
        blamed = found.blamed
        return BlameOut(
            execution_id=execution_id,
            path=found.path,
            op=blamed.op,
            value=msgspec.UNSET if is_absent(blamed.after) else blamed.after,
            previous=msgspec.UNSET if is_absent(blamed.before) else blamed.before,
            version=blamed.version,
            changes=blamed.changes,
            event=found.event,
            node_id=found.node_id,
            report=_report(found.report),
            causal_path=found.causal_path,
            causal_path_length=len(found.causal_path) - 1,
        )

    @get("/bisect", operation_id="bisectExecution")
    async def bisect(
        self,
        execution_id: FromPath[UUID],
        condition: ConditionText,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> BisectOut:
        """The first event after which ``condition`` (the grammar of edge conditions) holds
        on the run's state, found by binary search over state-as-of: never re-running
        anything, in at most ``max_probes`` = 1 + ceil(log2(events)) evaluations (``probes``
        says how many it took). It probes the last event first: ``found`` is false when the
        condition does not hold now. The answer is an event where the condition turned
        true (false right before it): for a monotonic condition, one that stays true once
        true, that is the first event after which it holds; if it turned true, false and
        true again, it is one of those turns, not necessarily the first. ``changes`` is what
        that event changed. 404 for an unknown run; 422 for a condition that does not parse."""
        bind_correlation(execution_id)
        found = await BisectService(ctx.pool, ctx.executions).bisect(principal.tenant_id, execution_id, condition)
        event = found.event
        node_id = event.payload.get("node_id") if event is not None else None
        return BisectOut(
            execution_id=execution_id,
            condition=found.condition,
            found=found.result.version is not None,
            version=found.result.version,
            event=event,
            node_id=node_id if isinstance(node_id, str) else None,
            changes=found.changes,
            probes=len(found.result.probes),
            probed_versions=found.result.probes,
            max_probes=found.max_probes,
            versions=found.result.head,
        )
