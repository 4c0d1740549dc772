"""/api/v1/edges: typed relations among memory entities, and walks over them (CELLSTATE reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, get_args
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.artifacts import Order, window
from api.auth import Principal
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from api.resource_helpers import Causes, created, guarded, knowledge, knowledge_item, with_etag
from api.workflows import IdempotencyKey, IfMatch
from commands.read_pool import Conn
from domain.entity_edge import EdgeDraft, EdgePatch, EdgeType, EntityEdge, EntityType, Participant, Provenance, Role
from domain.errors import FieldProblem, ValidationFailed
from projections.knowledge_queries import list_edges, participants_of, traverse

EDGE_TYPES = frozenset(get_args(EdgeType))
Relations = Annotated[
    list[str] | None, QueryParameter(description="edge types to follow (repeat or comma-separate); all if absent")
]
MaxDepth = Annotated[int, QueryParameter(ge=1, le=20, description="hops to walk from the start")]
WalkLimit = Annotated[int, QueryParameter(ge=1, le=1000, description="most entities to return")]


class EdgeWrite(EdgeDraft, frozen=True, kw_only=True, forbid_unknown_fields=True):
    caused_by: Causes = []


class EdgeUpdate(EdgePatch, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Null or absent: unchanged. Participants are what an edge is: they never change."""

    caused_by: Causes = []


class EdgeOut(msgspec.Struct, kw_only=True):
    edge_id: UUID
    tenant_id: str
    edge_type: str
    participants: list[Participant]
    provenance: Provenance
    weight: float | None
    trajectory_id: UUID | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    version: int
    last_event_id: UUID | None


class EdgeList(msgspec.Struct):
    edges: list[EdgeOut]


class ReachedOut(msgspec.Struct):
    entity_id: UUID
    entity_type: str | None
    depth: int


class TraversalOut(msgspec.Struct):
    start: UUID
    max_depth: int
    relations: list[str]
    nodes: list[ReachedOut]
    edges: list[EdgeOut]
    truncated: bool


def edge_out(e: EntityEdge) -> EdgeOut:
    return EdgeOut(
        edge_id=e.id,
        tenant_id=e.tenant_id,
        edge_type=e.edge_type,
        participants=e.participants,
        provenance=e.provenance,
        weight=e.weight,
        trajectory_id=e.trajectory_id,
        metadata=e.metadata,
        created_at=e.created_on,
        updated_at=e.modified_on,
        version=e.version,
        last_event_id=e.last_event_id,
    )


async def edges_from_rows(conn: Conn, tenant_id: str, rows: list[dict[str, Any]]) -> list[EdgeOut]:
    """Read-model rows with their participants (one more query for the whole page)."""
    parts = await participants_of(conn, tenant_id, [r["edge_id"] for r in rows])
    return [
        EdgeOut(
            edge_id=r["edge_id"],
            tenant_id=r["tenant_id"],
            edge_type=r["edge_type"],
            participants=[
                Participant(entity_type=p["entity_type"], entity_id=p["entity_id"], role=p["role"])
                for p in parts[r["edge_id"]]
            ],
            provenance=msgspec.convert(r["provenance"], Provenance),
            weight=r["weight"],
            trajectory_id=r["trajectory_id"],
            metadata=r["metadata"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            version=r["version"],
            last_event_id=r["last_event_id"],
        )
        for r in rows
    ]


def _relations(values: list[str] | None) -> list[str]:
    found = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    unknown = [v for v in found if v not in EDGE_TYPES]
    if unknown:
        message = f"unknown edge type(s) {', '.join(unknown)}; known: {', '.join(sorted(EDGE_TYPES))}"
        raise ValidationFailed([FieldProblem("relation", message, "enum")])
    return list(dict.fromkeys(found))


class EdgeController(Controller):
    path = "/api/v1/edges"
    tags = ["memory"]

    @post("/", operation_id="createEdge", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[EdgeWrite],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[EdgeOut]:
        """Create an edge among two or more distinct entities. Safe to retry with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        edge, is_new = await anyio.to_thread.run_sync(
            lambda: knowledge(ctx).create_edge(
                principal.context(data.caused_by), data, idempotency_key=idempotency_key, raw_body=raw
            )
        )
        return created(edge_out(edge), f"/api/v1/edges/{edge.id}", edge.version, created_now=is_new)

    @post("/batch", operation_id="createEdges", opt={"scope": "write"}, status_code=201)
    async def create_batch(
        self,
        data: JSONBody[Annotated[list[EdgeDraft], msgspec.Meta(min_length=1, max_length=500)]],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[EdgeList]:
        """Create several edges in one transaction: all of them or none."""
        raw = msgspec.to_builtins(data)
        edges, created = await anyio.to_thread.run_sync(
            lambda: knowledge(ctx).create_edges(
                principal.context(), data, idempotency_key=idempotency_key, raw_body=raw
            )
        )
        headers = {} if created else {"Idempotent-Replayed": "true"}
        return Response(EdgeList([edge_out(e) for e in edges]), status_code=201, headers=headers)

    @get("/", operation_id="listEdges")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        edge_type: FromQuery[EdgeType | None] = None,
        participant: Annotated[UUID | None, QueryParameter(description="entity id the edge names")] = None,
        role: FromQuery[Role | None] = None,
        entity_type: FromQuery[EntityType | None] = None,
        trajectory_id: FromQuery[UUID | None] = None,
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
        order: FromQuery[Order] = "desc",
    ) -> Page[EdgeOut]:
        """List live edges (the ``knowledge`` read model), newest first; ``participant``
        (with ``role`` / ``entity_type``) keeps the edges that name that entity."""
        if role is not None:  # Litestar leaves a query parameter's msgspec.Meta (the pattern) unchecked
            try:
                msgspec.convert(role, Role)
            except msgspec.ValidationError as error:
                raise ValidationFailed([FieldProblem("role", str(error), "invalid")]) from None
        w = window(created_after, created_before, False, False, order, limit, offset)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_edges(
                conn,
                principal.tenant_id,
                w,
                edge_type=edge_type,
                participant=participant,
                role=role,
                entity_type=entity_type,
                trajectory_id=trajectory_id,
            )
            items = await edges_from_rows(conn, principal.tenant_id, rows)
        return Page(items=items, total=total, limit=limit, offset=offset)

    @get("/by-participant/{entity_id:uuid}", operation_id="listEdgesByParticipant")
    async def by_participant(
        self,
        entity_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[EdgeOut]:
        """The CELLSTATE reference's form of ``GET /api/v1/edges?participant=``."""
        w = window(None, None, False, False, "desc", limit, offset)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_edges(conn, principal.tenant_id, w, participant=entity_id)
            items = await edges_from_rows(conn, principal.tenant_id, rows)
        return Page(items=items, total=total, limit=limit, offset=offset)

    @get("/traverse", operation_id="traverseEdges")
    async def walk(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        start: Annotated[UUID | None, QueryParameter(description="entity id to start from")] = None,
        start_id: Annotated[UUID | None, QueryParameter(description="the seed's name for start")] = None,
        max_depth: MaxDepth = 3,
        relation: Relations = None,
        rel_types: Annotated[list[str] | None, QueryParameter(description="the seed's name for relation")] = None,
        limit: WalkLimit = 100,
    ) -> TraversalOut:
        """Walk edges breadth-first from an entity through their participants (cycle-safe):
        every entity reached with its depth (fewest hops), nearest first, and the edges used."""
        origin = start or start_id
        if origin is None or (start and start_id and start != start_id):
            raise ValidationFailed([FieldProblem("start", "give the entity id to start from, once", "required")])
        relations = _relations([*(relation or []), *(rel_types or [])])
        async with ctx.read_models.connection() as conn:
            found = await traverse(
                conn, principal.tenant_id, origin, max_depth=max_depth, relations=relations, limit=limit
            )
            edges = await edges_from_rows(conn, principal.tenant_id, found.edges)
        return TraversalOut(
            start=origin,
            max_depth=max_depth,
            relations=relations,
            nodes=[ReachedOut(n.entity_id, n.entity_type, n.depth) for n in found.nodes],
            edges=edges,
            truncated=found.truncated,
        )

    @get("/{edge_id:uuid}", operation_id="getEdge")
    async def get_one(
        self, edge_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[EdgeOut]:
        """An edge from the event store (no lag); a deleted one answers 404."""
        edge = await knowledge_item(ctx, principal, EntityEdge, edge_id)
        return with_etag(edge_out(edge), edge.version)

    @patch("/{edge_id:uuid}", operation_id="updateEdge", opt={"scope": "write"})
    async def update(
        self,
        edge_id: FromPath[UUID],
        data: JSONBody[EdgeUpdate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[EdgeOut]:
        """Change the type, weight or metadata; ``If-Match`` guards lost updates."""
        edge = await guarded(
            if_match,
            lambda v: knowledge(ctx).update_edge(principal.context(data.caused_by), edge_id, data, expected_version=v),
        )
        return with_etag(edge_out(edge), edge.version)

    @delete("/{edge_id:uuid}", operation_id="deleteEdge", opt={"scope": "write"}, status_code=204)
    async def remove(
        self,
        edge_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Delete: appends a tombstone event; the history stays in the event DAG."""
        await guarded(if_match, lambda v: knowledge(ctx).delete_edge(principal.context(), edge_id, expected_version=v))
