"""/api/v1/workflows: versioned workflow definitions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.definitions import DefinitionInput, TopLevelEdge, top_level
from api.pagination import MAX_VERSION, Limit, Offset, Page, created_headers
from commands.workflows import WorkflowInput
from domain.errors import FieldProblem, ValidationFailed
from domain.workflow import Description, Name, Workflow
from domain.workflow_graph import Node, WorkflowDefinition
from projections.workflows import list_workflows

IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=255)]
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match")]


class WorkflowWrite(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Quipu's body (``name``, ``definition``), or Analemma OS's: ``nodes`` and ``edges`` at
    the top, with ``category`` and ``visibility`` (kept in ``metadata``). Without a ``name``,
    an Agent Studio definition's ``name`` names the workflow."""

    name: Name | None = None
    definition: DefinitionInput | None = None
    nodes: Annotated[list[Node], msgspec.Meta(max_length=2000)] | None = None
    edges: Annotated[list[TopLevelEdge], msgspec.Meta(max_length=10000)] | None = None
    category: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    visibility: Literal["private", "public"] | None = None
    description: Description = ""
    metadata: dict[str, Any] = {}
    caused_by: Annotated[list[UUID], msgspec.Meta(max_length=100)] = []

    def chosen_definition(self) -> DefinitionInput:
        if self.definition is not None and self.nodes is None and self.edges is None:
            return self.definition
        if self.definition is None and self.nodes is not None:
            return top_level(self.nodes, self.edges or [])
        message = "send the graph under definition, or nodes (and edges) at the top, not both or neither"
        raise ValidationFailed([FieldProblem("definition", message, "invalid_form")])


class WorkflowOut(msgspec.Struct):
    id: UUID
    name: str
    description: str
    version: int
    definition_version: int
    definition: WorkflowDefinition
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_event_id: UUID | None


class WorkflowSummary(msgspec.Struct):
    id: UUID
    name: str
    description: str
    version: int
    definition_version: int
    node_count: int
    edge_count: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def workflow_out(w: Workflow) -> WorkflowOut:
    return WorkflowOut(
        id=w.id,
        name=w.name,
        description=w.description,
        version=w.version,
        definition_version=w.definition_version,
        definition=w.definition,
        metadata=w.metadata,
        created_at=w.created_on,
        updated_at=w.modified_on,
        last_event_id=w.last_event_id,
    )


def etag_for(w: Workflow) -> dict[str, str]:
    return {"ETag": f'"{w.version}"'}


def expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        return -1  # never matches: a malformed If-Match must not be ignored


def _input(data: WorkflowWrite) -> WorkflowInput:
    definition = data.chosen_definition()
    name = data.name or definition.name
    if name is None:
        message = "a workflow needs a name (here, or as its definition's name)"
        raise ValidationFailed([FieldProblem("name", message, "required")])
    listed = {"category": data.category, "visibility": data.visibility}
    header = definition.header() | {k: v for k, v in listed.items() if v is not None}
    description = data.description or definition.description or ""
    return WorkflowInput(name, description, definition.canonical(), data.metadata | header)


class WorkflowController(Controller):
    path = "/api/v1/workflows"
    tags = ["workflows"]

    @post("/", operation_id="createWorkflow", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[WorkflowWrite],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[WorkflowOut]:
        """Create a workflow definition (version 1). Safe to retry with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        workflow, created = await anyio.to_thread.run_sync(
            lambda: ctx.workflows.create(
                principal.context(data.caused_by), _input(data), idempotency_key=idempotency_key, raw_body=raw
            )
        )
        bind_correlation(workflow.correlation_id)
        headers = created_headers(f"/api/v1/workflows/{workflow.id}", created_now=created, **etag_for(workflow))
        return Response(workflow_out(workflow), status_code=201, headers=headers)

    @get("/", operation_id="listWorkflows")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        name: Annotated[str | None, QueryParameter(max_length=200, description="substring of the name")] = None,
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
        sort: FromQuery[Literal["created_at", "updated_at", "name"]] = "created_at",
        order: FromQuery[Literal["asc", "desc"]] = "desc",
    ) -> Page[WorkflowSummary]:
        """List live workflows (from the ``workflows`` read model) with filters, sort and paging."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_workflows(
                conn,
                principal.tenant_id,
                name_contains=name,
                created_after=created_after,
                created_before=created_before,
                sort=sort,
                descending=order == "desc",
                limit=limit,
                offset=offset,
            )
        items = [
            WorkflowSummary(
                id=r.workflow_id,
                name=r.name,
                description=r.description,
                version=r.version,
                definition_version=r.definition_version,
                node_count=r.node_count,
                edge_count=r.edge_count,
                metadata=r.metadata,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows
        ]
        return Page(items=items, total=total, limit=limit, offset=offset)

    @get("/{workflow_id:uuid}", operation_id="getWorkflow")
    async def get_one(
        self,
        workflow_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        version: Annotated[int | None, QueryParameter(ge=1, le=MAX_VERSION, description="definition version")] = None,
    ) -> Response[WorkflowOut]:
        """A workflow from the event store (no lag); ``?version=`` returns an earlier version."""
        bind_correlation(workflow_id)
        workflow = await anyio.to_thread.run_sync(
            lambda: ctx.workflows.get(principal.tenant_id, workflow_id, definition_version=version)
        )
        return Response(workflow_out(workflow), headers=etag_for(workflow))

    @put("/{workflow_id:uuid}", operation_id="updateWorkflow", opt={"scope": "write"})
    async def update(
        self,
        workflow_id: FromPath[UUID],
        data: JSONBody[WorkflowWrite],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[WorkflowOut]:
        """Replace the definition: appends a new version; ``If-Match`` guards lost updates."""
        bind_correlation(workflow_id)
        workflow = await anyio.to_thread.run_sync(
            lambda: ctx.workflows.update(
                principal.context(data.caused_by),
                workflow_id,
                _input(data),
                expected_version=expected_version(if_match),
            )
        )
        return Response(workflow_out(workflow), headers=etag_for(workflow))

    @delete("/{workflow_id:uuid}", operation_id="deleteWorkflow", opt={"scope": "write"}, status_code=204)
    async def remove(
        self,
        workflow_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Delete: appends a tombstone event; the history stays in the event DAG."""
        bind_correlation(workflow_id)
        await anyio.to_thread.run_sync(
            lambda: ctx.workflows.delete(principal.context(), workflow_id, expected_version=expected_version(if_match))
        )
