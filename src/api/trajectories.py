"""/api/v1/trajectories: tasks an agent works on, with sub-tasks (CELLSTATE reference)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from api.resource_helpers import Causes, created, edit_session_item, rows_page, session_item, sessions, with_etag
from api.workflows import IdempotencyKey, IfMatch, expected_version
from commands.memory_sessions import TrajectoryInput
from domain.aggregate import CommandContext
from domain.trajectory import Description, Metadata, Name, Trajectory, TrajectoryStatus
from projections.memory_sessions import list_trajectories

ErrorText = Annotated[str, msgspec.Meta(max_length=5000)]


class TrajectoryCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    description: Description | None = None
    agent_id: UUID | None = None
    parent_trajectory_id: UUID | None = None
    metadata: Metadata | None = None
    caused_by: Causes = []


class TrajectoryPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Null or absent: unchanged (the CELLSTATE reference's "if changing")."""

    name: Name | None = None
    description: Description | None = None
    metadata: Metadata | None = None
    status: TrajectoryStatus | None = None
    caused_by: Causes = []


class TrajectoryFinish(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    outcome: Metadata | None = None
    error: ErrorText | None = None
    caused_by: Causes = []


class TrajectoryOut(msgspec.Struct, kw_only=True):
    trajectory_id: UUID
    tenant_id: str
    name: str
    description: str | None
    agent_id: UUID | None
    parent_trajectory_id: UUID | None
    root_trajectory_id: UUID
    status: str
    outcome: dict[str, Any] | None
    error: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        me = f"/api/v1/trajectories/{self.trajectory_id}"
        self.links = {"self": me, "children": f"{me}/children", "scopes": f"{me}/scopes"}
        if self.parent_trajectory_id:
            self.links["parent"] = f"/api/v1/trajectories/{self.parent_trajectory_id}"


def trajectory_out(t: Trajectory) -> TrajectoryOut:
    return TrajectoryOut(
        trajectory_id=t.id,
        tenant_id=t.tenant_id,
        name=t.name,
        description=t.description,
        agent_id=t.agent_id,
        parent_trajectory_id=t.parent_trajectory_id,
        root_trajectory_id=t.root_trajectory_id,
        status=t.status,
        outcome=t.outcome,
        error=t.error,
        metadata=t.metadata,
        created_at=t.created_on,
        updated_at=t.modified_on,
        completed_at=t.completed_at,
        version=t.version,
        last_event_id=t.last_event_id,
    )


class TrajectoryController(Controller):
    path = "/api/v1/trajectories"
    tags = ["memory"]

    @post("/", operation_id="createTrajectory", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[TrajectoryCreate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[TrajectoryOut]:
        """Create a trajectory, or a sub-task of ``parent_trajectory_id``. Safe to retry with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        fields = TrajectoryInput(data.name, data.description, data.agent_id, data.parent_trajectory_id, data.metadata)
        trajectory, is_new = await anyio.to_thread.run_sync(
            lambda: sessions(ctx).create_trajectory(
                principal.context(data.caused_by), fields, idempotency_key=idempotency_key, raw_body=raw
            )
        )
        bind_correlation(trajectory.correlation_id)
        location = f"/api/v1/trajectories/{trajectory.id}"
        return created(trajectory_out(trajectory), location, trajectory.version, created_now=is_new)

    @get("/", operation_id="listTrajectories")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        status: FromQuery[TrajectoryStatus | None] = None,
        agent_id: FromQuery[UUID | None] = None,
        parent_trajectory_id: FromQuery[UUID | None] = None,
        root_trajectory_id: FromQuery[UUID | None] = None,
    ) -> Page[TrajectoryOut]:
        """Live trajectories, newest first, from the ``memory_sessions`` read model, with the
        CELLSTATE reference's filters."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_trajectories(
                conn,
                principal.tenant_id,
                status=status,
                agent_id=agent_id,
                parent_trajectory_id=parent_trajectory_id,
                root_trajectory_id=root_trajectory_id,
                limit=limit,
                offset=offset,
            )
        return rows_page(rows, total, TrajectoryOut, limit, offset)

    @get("/{trajectory_id:uuid}", operation_id="getTrajectory")
    async def get_one(
        self, trajectory_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[TrajectoryOut]:
        """A trajectory from the event store (no lag); deleted or another tenant's -> 404."""
        trajectory = await session_item(ctx, principal, Trajectory, trajectory_id)
        bind_correlation(trajectory.correlation_id)
        return with_etag(trajectory_out(trajectory), trajectory.version)

    @patch("/{trajectory_id:uuid}", operation_id="updateTrajectory", opt={"scope": "write"})
    async def update(
        self,
        trajectory_id: FromPath[UUID],
        data: JSONBody[TrajectoryPatch],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[TrajectoryOut]:
        """Change name, description, metadata or status (409 once completed or failed)."""
        return await _edit(
            ctx,
            principal,
            trajectory_id,
            lambda t, c: t.update(
                c, name=data.name, description=data.description, metadata=data.metadata, status=data.status
            ),
            data.caused_by,
            expected_version(if_match),
        )

    @post("/{trajectory_id:uuid}/complete", operation_id="completeTrajectory", opt={"scope": "write"}, status_code=200)
    async def complete(
        self,
        trajectory_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[TrajectoryFinish | None] = None,
    ) -> Response[TrajectoryOut]:
        """Mark the task completed with its outcome (409 if it already completed or failed)."""
        body = data or TrajectoryFinish()
        return await _edit(
            ctx, principal, trajectory_id, lambda t, c: t.complete(c, outcome=body.outcome), body.caused_by
        )

    @post("/{trajectory_id:uuid}/fail", operation_id="failTrajectory", opt={"scope": "write"}, status_code=200)
    async def fail(
        self,
        trajectory_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        data: JSONBody[TrajectoryFinish | None] = None,
    ) -> Response[TrajectoryOut]:
        """Mark the task failed with its outcome and error (409 if it already completed or failed)."""
        body = data or TrajectoryFinish()
        return await _edit(
            ctx,
            principal,
            trajectory_id,
            lambda t, c: t.fail(c, outcome=body.outcome, error=body.error),
            body.caused_by,
        )

    @delete("/{trajectory_id:uuid}", operation_id="deleteTrajectory", opt={"scope": "write"}, status_code=204)
    async def remove(
        self,
        trajectory_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Delete: appends a tombstone; the history stays in the event DAG."""
        await _edit(ctx, principal, trajectory_id, lambda t, c: t.delete(c), [], expected_version(if_match))

    @get("/{trajectory_id:uuid}/children", operation_id="listTrajectoryChildren")
    async def children(
        self,
        trajectory_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[TrajectoryOut]:
        """The direct sub-tasks of a trajectory (404 for an unknown or deleted one)."""
        await session_item(ctx, principal, Trajectory, trajectory_id)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_trajectories(
                conn, principal.tenant_id, parent_trajectory_id=trajectory_id, limit=limit, offset=offset
            )
        return rows_page(rows, total, TrajectoryOut, limit, offset)


async def _edit(
    ctx: ApiContext,
    principal: Principal,
    trajectory_id: UUID,
    change: Callable[[Trajectory, CommandContext], object],
    caused_by: list[UUID],
    version: int | None = None,
) -> Response[TrajectoryOut]:
    """Load, let the aggregate decide, save: in a thread, since the event store is synchronous."""
    trajectory = await edit_session_item(ctx, principal, Trajectory, trajectory_id, change, caused_by, version)
    return with_etag(trajectory_out(trajectory), trajectory.version)
