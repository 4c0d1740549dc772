"""Provenance of memory items: which turns, tool calls, node, approvals and command
produced an artifact or a note, walked on the event DAG."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import anyio.to_thread
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from api.auth import Principal
from api.context import ApiContext
from commands.provenance import EntityType, ItemProvenance, provenance
from commands.store import EventStore
from domain.errors import NotFound
from domain.execution import Execution

MaxDepth = Annotated[int, QueryParameter(ge=1, le=10_000, description="hops to walk back from the creation")]
WalkLimit = Annotated[int, QueryParameter(ge=1, le=10_000, description="most ancestor events to visit")]


def _node_status(store: EventStore, tenant_id: str, execution_id: UUID, node_id: str) -> str | None:
    try:
        status = store.load(Execution, execution_id, tenant_id).nodes.get(node_id)
    except NotFound:
        return None
    return None if status is None else str(status)


async def _answer(
    ctx: ApiContext, principal: Principal, entity_type: EntityType, item_id: UUID, max_depth: int, limit: int
) -> ItemProvenance:
    async with ctx.pool.connection() as conn:
        found = await provenance(conn, principal.tenant_id, entity_type, item_id, max_depth=max_depth, limit=limit)
    if (node := found.node) is not None:
        # The status now, from the execution itself: the walk only saw the past.
        node.status = await anyio.to_thread.run_sync(
            _node_status, ctx.store, principal.tenant_id, node.execution_id, node.node_id
        )
    return found


class ProvenanceController(Controller):
    path = "/api/v1"
    tags = ["memory"]

    @get("/artifacts/{artifact_id:uuid}/provenance", operation_id="getArtifactProvenance")
    async def artifact(
        self,
        artifact_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        max_depth: MaxDepth = 50,
        limit: WalkLimit = 500,
    ) -> ItemProvenance:
        """What produced this artifact: a bounded walk back from its creation event to the
        turns, tool calls, execution node, approvals and command behind it, nearest first.
        Deleted and superseded artifacts keep their provenance; another tenant's is 404."""
        return await _answer(ctx, principal, "artifact", artifact_id, max_depth, limit)

    @get("/notes/{note_id:uuid}/provenance", operation_id="getNoteProvenance")
    async def note(
        self,
        note_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        max_depth: MaxDepth = 50,
        limit: WalkLimit = 500,
    ) -> ItemProvenance:
        """What produced this note: its source artifacts and notes with their own creation,
        and through them (or the note's own causes) the turns, tool calls, node, approvals
        and command, nearest first. Another tenant's note is 404."""
        return await _answer(ctx, principal, "note", note_id, max_depth, limit)
