"""/api/v1/executions/{id}/checkpoints: the state after each node, and on demand.

Lists and single checkpoints come from the ``checkpoints`` read model (a checkpoint taken
a moment ago appears once the projector has seen it); taking one goes through the
execution aggregate, which records it as an event whose id is the checkpoint id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.executions import act
from api.pagination import Limit, Offset, Page, created_headers
from domain.errors import NotFound
from domain.execution_events import CheckpointType
from domain.hashing import state_hash
from projections.checkpoints import CheckpointRow

_canonical = msgspec.json.Encoder(order="sorted")


class CheckpointRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class CheckpointSummary(msgspec.Struct):
    checkpoint_id: UUID
    execution_id: UUID
    sequence: int
    node_id: str | None  # the node after which it was taken (or that failed); None when taken on demand
    label: str | None
    type: CheckpointType  # automatic (after a node), manual (on demand), failure (a node failed), paused
    is_recoverable: bool  # the run can continue from it: a failed run resumes from the latest such one
    state_hash: str
    state_size_bytes: int
    created_at: datetime


class CheckpointOut(msgspec.Struct):
    checkpoint_id: UUID
    execution_id: UUID
    sequence: int
    node_id: str | None
    label: str | None
    type: CheckpointType
    is_recoverable: bool
    state_hash: str
    state_size_bytes: int
    created_at: datetime
    state: dict[str, Any]


class CheckpointCreated(msgspec.Struct):
    """The checkpoint just recorded (its ``sequence`` is known once it is projected)."""

    checkpoint_id: UUID
    execution_id: UUID
    label: str | None
    type: CheckpointType
    is_recoverable: bool
    state_hash: str
    state_size_bytes: int
    created_at: datetime
    state: dict[str, Any]


def _summary(r: CheckpointRow) -> CheckpointSummary:
    return CheckpointSummary(
        r.checkpoint_id,
        r.execution_id,
        r.sequence,
        r.node_id,
        r.label,
        r.type,
        r.is_recoverable,
        r.state_hash,
        r.state_size_bytes,
        r.created_at,
    )


class CheckpointController(Controller):
    path = "/api/v1/executions/{execution_id:uuid}/checkpoints"
    tags = ["checkpoints"]

    @get("/", operation_id="listCheckpoints")
    async def list_all(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        order: FromQuery[Literal["asc", "desc"]] = "desc",
    ) -> Page[CheckpointSummary]:
        """The execution's checkpoints, newest first by default (``order=asc``: oldest
        first), without their states; fetch one by id for its state."""
        bind_correlation(execution_id)
        rows, total = await ctx.execution_reads.checkpoints(
            principal.tenant_id, execution_id, descending=order == "desc", limit=limit, offset=offset
        )
        return Page(items=[_summary(r) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{checkpoint_id:uuid}", operation_id="getCheckpoint")
    async def get_one(
        self,
        execution_id: FromPath[UUID],
        checkpoint_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> CheckpointOut:
        """One checkpoint with the full state it recorded (404 if unknown or not this tenant's)."""
        bind_correlation(execution_id)
        row = await ctx.execution_reads.checkpoint(principal.tenant_id, execution_id, checkpoint_id)
        if row is None or row.state is None:
            raise NotFound(f"checkpoint {checkpoint_id} not found")
        return CheckpointOut(
            row.checkpoint_id,
            row.execution_id,
            row.sequence,
            row.node_id,
            row.label,
            row.type,
            row.is_recoverable,
            row.state_hash,
            row.state_size_bytes,
            row.created_at,
            row.state,
        )

    @post("/", operation_id="createCheckpoint", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[CheckpointRequest | None] = None,
    ) -> Response[CheckpointCreated]:
        """Record the execution's state now, with an optional ``label`` (allowed after the
        run ended too: it is a read of the state)."""
        label = data.label if data else None
        out = await act(ctx, principal, execution_id, lambda e, c: e.take_checkpoint(c, label))
        assert out.last_event_id is not None  # the checkpoint event just recorded
        created = CheckpointCreated(
            checkpoint_id=out.last_event_id,
            execution_id=execution_id,
            label=label,
            type="manual",
            is_recoverable=out.status != "succeeded",
            state_hash=state_hash(out.state),
            state_size_bytes=len(_canonical.encode(out.state)),
            created_at=out.updated_at,
            state=out.state,
        )
        location = f"/api/v1/executions/{execution_id}/checkpoints/{created.checkpoint_id}"
        return Response(created, status_code=201, headers=created_headers(location, created_now=True))
