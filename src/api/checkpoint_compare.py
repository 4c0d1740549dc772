"""POST /api/v1/executions/{id}/checkpoints/compare: what changed between two points (seed 000).

Both sides are resolved to a version of the execution's stream and the state is rebuilt
from the log as of that version. A checkpoint's recorded state is exactly the state the
aggregate has right after the checkpoint event (taking one does not change it), so this
answers the same as the checkpoints read model would, without waiting for its projector:
a checkpoint taken a moment ago can be compared at once. The same path serves any two
points, named by an event of the execution or a version number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from commands.schema import EVENTS_TABLE
from domain.errors import FieldProblem, NotFound, ValidationFailed
from domain.state_diff import Change, PatchOp, StateDiff, ValueChange, diff

CHECKPOINT_KIND = "execution.checkpoint_taken"
Version = Annotated[int, msgspec.Meta(ge=1, le=2**62)]


class Point(msgspec.Struct, forbid_unknown_fields=True):
    """``as_of``: an event id of this execution (one of its own, or telemetry recorded in
    it: the state as the execution stood then), or a version."""

    as_of: Version | UUID


class CompareRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Either ``checkpoint_a`` and ``checkpoint_b``, or ``a`` and ``b``; never both forms."""

    checkpoint_a: UUID | None = None
    checkpoint_b: UUID | None = None
    a: Point | None = None
    b: Point | None = None


class ComparedPoint(msgspec.Struct, kw_only=True):
    """One side: the state compared is the execution's right after ``event_id``."""

    version: int
    event_id: UUID
    kind: str
    timestamp: datetime
    checkpoint_id: UUID | None  # set when that event is a checkpoint
    as_of: int | UUID | None  # what was asked for (None when named as a checkpoint)


class CheckpointComparison(msgspec.Struct, kw_only=True):
    execution_id: UUID
    a: ComparedPoint
    b: ComparedPoint
    added_keys: list[str]
    removed_keys: list[str]
    modified_keys: list[str]
    state_diff: dict[str, ValueChange]  # seed 000's shape: top-level modified keys
    changes: list[Change]  # every changed leaf or subtree, by RFC 6901 pointer
    patch: list[PatchOp]  # RFC 6902: applied to a's state it gives b's


def _pairs(data: CompareRequest) -> tuple[tuple[UUID, UUID] | None, tuple[Point, Point] | None]:
    """The form the body uses, or 422 naming what is missing or mixed."""
    checkpoints = (data.checkpoint_a, data.checkpoint_b)
    points = (data.a, data.b)
    named = {
        name
        for name, value in zip(("checkpoint_a", "checkpoint_b", "a", "b"), (*checkpoints, *points), strict=True)
        if value is not None
    }
    uses_checkpoints, uses_points = bool(named & {"checkpoint_a", "checkpoint_b"}), bool(named & {"a", "b"})
    if uses_checkpoints and uses_points:
        raise ValidationFailed(
            [FieldProblem("body", "give checkpoint_a and checkpoint_b, or a and b, not both", "ambiguous")]
        )
    if not named:
        raise ValidationFailed([FieldProblem("body", "give checkpoint_a and checkpoint_b, or a and b", "required")])
    missing = sorted({"checkpoint_a", "checkpoint_b"} - named if uses_checkpoints else {"a", "b"} - named)
    if missing:
        raise ValidationFailed([FieldProblem(name, "required with the other side", "required") for name in missing])
    if data.checkpoint_a is not None and data.checkpoint_b is not None:
        return (data.checkpoint_a, data.checkpoint_b), None
    assert data.a is not None and data.b is not None
    return None, (data.a, data.b)


_COLUMNS = "d.event_id, d.version, d.kind, d.occurred_at"
# A checkpoint is its event: it must be this execution's, this tenant's, and a checkpoint.
_BY_CHECKPOINT = (
    f"SELECT {_COLUMNS} FROM event_dag d"
    " WHERE d.event_id = %(id)s AND d.tenant_id = %(tenant)s AND d.stream_id = %(execution)s"
    f" AND d.kind = '{CHECKPOINT_KIND}'"
)
# The stream's event at a version (the events table's key finds it; the DAG index says
# whose it is).
_BY_VERSION = (
    f"SELECT {_COLUMNS} FROM {EVENTS_TABLE} e JOIN event_dag d ON d.notification_id = e.notification_id"
    " WHERE e.originator_id = %(execution)s AND e.originator_version = %(version)s AND d.tenant_id = %(tenant)s"
)
# An event of the execution: one of its own (the state right after it), or glass-box
# telemetry recorded in it (same correlation as the execution's events; the state as it
# stood when the telemetry was recorded: the stream's latest event before it). Versions
# grow with notification ids within a stream.
_BY_EVENT = (
    f"SELECT {_COLUMNS} FROM event_dag t"
    " CROSS JOIN LATERAL ("
    f"  SELECT e.notification_id FROM {EVENTS_TABLE} e"
    "   WHERE e.originator_id = %(execution)s AND e.notification_id <= t.notification_id"
    "   ORDER BY e.originator_version DESC LIMIT 1) s"
    " JOIN event_dag d ON d.notification_id = s.notification_id"
    " WHERE t.event_id = %(id)s AND t.tenant_id = %(tenant)s AND d.tenant_id = %(tenant)s"
    " AND (t.stream_id = %(execution)s OR (t.kind LIKE 'telemetry.%%' AND t.correlation_id = d.correlation_id))"
)


async def _resolve(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    execution_id: UUID,
    *,
    checkpoint: UUID | None = None,
    as_of: int | UUID | None = None,
) -> ComparedPoint:
    """The stream event whose state a side names; 404 if it is not this tenant's
    execution's (indistinguishable from not existing, as everywhere)."""
    params: dict[str, Any] = {"tenant": tenant_id, "execution": execution_id}
    if checkpoint is not None:
        query, what = _BY_CHECKPOINT, f"checkpoint {checkpoint}"
        params["id"] = checkpoint
    elif isinstance(as_of, int):
        query, what = _BY_VERSION, f"version {as_of}"
        params["version"] = as_of
    else:
        query, what = _BY_EVENT, f"event {as_of}"
        params["id"] = as_of
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{what} of execution {execution_id} not found")
    event_id = UUID(str(row["event_id"]))
    return ComparedPoint(
        version=int(row["version"]),
        event_id=event_id,
        kind=row["kind"],
        timestamp=row["occurred_at"],
        checkpoint_id=event_id if row["kind"] == CHECKPOINT_KIND else None,
        as_of=as_of,
    )


class CheckpointCompareController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}/checkpoints"
    tags = ["checkpoints"]

    @post("/compare", operation_id="compareCheckpoints", status_code=200)
    async def compare(
        self,
        execution_id: FromPath[UUID],
        data: JSONBody[CompareRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> CheckpointComparison:
        """Added, removed and modified keys, every change by JSON pointer with before and
        after, and the RFC 6902 patch from ``a``'s state to ``b``'s. Name the sides as
        ``checkpoint_a``/``checkpoint_b`` or as ``a``/``b`` with ``as_of`` (an event id of
        this execution or a version). Either order works: ``b`` may be the earlier one."""
        bind_correlation(execution_id)
        checkpoints, points = _pairs(data)
        tenant = principal.tenant_id
        async with ctx.pool.connection() as conn:
            if checkpoints is not None:
                a = await _resolve(conn, tenant, execution_id, checkpoint=checkpoints[0])
                b = await _resolve(conn, tenant, execution_id, checkpoint=checkpoints[1])
            else:
                assert points is not None
                a = await _resolve(conn, tenant, execution_id, as_of=points[0].as_of)
                b = await _resolve(conn, tenant, execution_id, as_of=points[1].as_of)

        def rebuild_and_diff() -> StateDiff:
            # Rebuilding and diffing are CPU and synchronous I/O: off the event loop.
            before = ctx.executions.get(tenant, execution_id, version=a.version).state
            after = (
                before if b.version == a.version else ctx.executions.get(tenant, execution_id, version=b.version).state
            )
            return diff(before, after)

        d = await anyio.to_thread.run_sync(rebuild_and_diff)
        return CheckpointComparison(
            execution_id=execution_id,
            a=a,
            b=b,
            added_keys=d.added_keys,
            removed_keys=d.removed_keys,
            modified_keys=d.modified_keys,
            state_diff=d.state_diff,
            changes=d.changes,
            patch=d.patch,
        )
