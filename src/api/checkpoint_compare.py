"""POST /api/v1/executions/{id}/checkpoints/compare: what changed between two points (Analemma OS reference).

The sides are named by checkpoints, or by events of the execution or version numbers; the
comparison itself (``commands.checkpoint_compare``) rebuilds both states from the log, so a
checkpoint taken a moment ago can be compared at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from commands.checkpoint_compare import ResolvedSide, Side
from domain.errors import FieldProblem, ValidationFailed
from domain.state_diff import Change, PatchOp, ValueChange

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
    state_diff: dict[str, ValueChange]  # the Analemma OS reference's shape: top-level modified keys
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


def _point(side: ResolvedSide, as_of: int | UUID | None) -> ComparedPoint:
    return ComparedPoint(
        version=side.version,
        event_id=side.event_id,
        kind=side.kind,
        timestamp=side.timestamp,
        checkpoint_id=side.checkpoint_id,
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
        if checkpoints is not None:
            a, b = Side(checkpoint=checkpoints[0]), Side(checkpoint=checkpoints[1])
        else:
            assert points is not None
            a, b = Side(as_of=points[0].as_of), Side(as_of=points[1].as_of)
        found = await ctx.compare.compare(principal.tenant_id, execution_id, a, b)
        d = found.diff
        return CheckpointComparison(
            execution_id=execution_id,
            a=_point(found.a, a.as_of),
            b=_point(found.b, b.as_of),
            added_keys=d.added_keys,
            removed_keys=d.removed_keys,
            modified_keys=d.modified_keys,
            state_diff=d.state_diff,
            changes=d.changes,
            patch=d.patch,
        )
