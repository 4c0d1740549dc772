"""/api/v1/artifacts: typed outputs an agent keeps across scopes (CELLSTATE reference).

Also the request and response pieces the notes and edges controllers share.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Limit, Offset, Page
from api.resource_helpers import Causes, created, guarded, knowledge, knowledge_item, with_etag
from api.workflows import IdempotencyKey, IfMatch
from domain.artifact import Artifact, ArtifactDraft, ArtifactPatch, ArtifactType, ExtractionMethod, Ttl
from domain.entity_edge import Provenance
from projections.knowledge_queries import Window, list_artifacts

Order = Literal["asc", "desc"]


def ttl_of(value: Any) -> Ttl:
    """A TTL as stored in the read model (JSON) back in its typed form."""
    return msgspec.convert(value, Ttl)  # type: ignore[no-any-return]


def window(
    created_after: datetime | None,
    created_before: datetime | None,
    include_expired: bool,
    include_superseded: bool,
    order: Order,
    limit: int,
    offset: int,
) -> Window:
    return Window(created_after, created_before, include_expired, include_superseded, order == "desc", limit, offset)


class ArtifactWrite(ArtifactDraft, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The CELLSTATE reference's create body; ``execution_id`` + ``node_id`` name the running node that
    produced it, ``caused_by`` the events it came from (a turn, a tool call)."""

    caused_by: Causes = []


class ArtifactUpdate(ArtifactPatch, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Null or absent: unchanged (the CELLSTATE reference's "if changing")."""

    caused_by: Causes = []


class ArtifactOut(msgspec.Struct, kw_only=True):
    artifact_id: UUID
    tenant_id: str
    name: str
    artifact_type: str
    content: str
    content_hash: str
    provenance: Provenance
    trajectory_id: UUID | None
    scope_id: UUID | None
    metadata: dict[str, Any]
    ttl: Ttl
    expires_at: datetime | None
    supersedes: UUID | None
    superseded_by: UUID | None
    execution_id: UUID | None
    node_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        self.links = {"self": f"/api/v1/artifacts/{self.artifact_id}"}
        for rel in ("supersedes", "superseded_by"):
            if (other := getattr(self, rel)) is not None:
                self.links[rel] = f"/api/v1/artifacts/{other}"


def artifact_out(a: Artifact) -> ArtifactOut:
    return ArtifactOut(
        artifact_id=a.id,
        tenant_id=a.tenant_id,
        name=a.name,
        artifact_type=a.artifact_type,
        content=a.content,
        content_hash=a.content_hash,
        provenance=Provenance(
            source_turn=a.source_turn,
            extraction_method=a.extraction_method,  # type: ignore[arg-type]
            confidence=a.confidence,
        ),
        trajectory_id=a.trajectory_id,
        scope_id=a.scope_id,
        metadata=a.metadata,
        ttl=a.ttl,
        expires_at=a.expires_at,
        supersedes=a.supersedes,
        superseded_by=a.superseded_by,
        execution_id=a.execution_id,
        node_id=a.node_id,
        created_at=a.created_on,
        updated_at=a.modified_on,
        version=a.version,
        last_event_id=a.last_event_id,
    )


def artifact_row(r: dict[str, Any]) -> ArtifactOut:
    return ArtifactOut(
        artifact_id=r["artifact_id"],
        tenant_id=r["tenant_id"],
        name=r["name"],
        artifact_type=r["artifact_type"],
        content=r["content"],
        content_hash=r["content_hash"],
        provenance=Provenance(
            source_turn=r["source_turn"], extraction_method=r["extraction_method"], confidence=r["confidence"]
        ),
        trajectory_id=r["trajectory_id"],
        scope_id=r["scope_id"],
        metadata=r["metadata"],
        ttl=ttl_of(r["ttl"]),
        expires_at=r["expires_at"],
        supersedes=r["supersedes"],
        superseded_by=r["superseded_by"],
        execution_id=r["execution_id"],
        node_id=r["node_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        version=r["version"],
        last_event_id=r["last_event_id"],
    )


class ArtifactController(Controller):
    path = "/api/v1/artifacts"
    tags = ["memory"]

    @post("/", operation_id="createArtifact", opt={"scope": "write"}, status_code=201)
    async def create(
        self,
        data: JSONBody[ArtifactWrite],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[ArtifactOut]:
        """Create an artifact; Quipu computes its content hash and expiry. Safe to retry with ``Idempotency-Key``."""
        return await self._create(data, ctx, principal, idempotency_key, None)

    @post("/{artifact_id:uuid}/supersede", operation_id="supersedeArtifact", opt={"scope": "write"}, status_code=201)
    async def supersede(
        self,
        artifact_id: FromPath[UUID],
        data: JSONBody[ArtifactWrite],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[ArtifactOut]:
        """Create the artifact that replaces this one (which then records ``superseded_by``).
        The replacement keeps the old artifact's trajectory, scope and metadata unless the body gives others.
        An artifact is superseded once: a second attempt answers 409."""
        return await self._create(data, ctx, principal, idempotency_key, artifact_id)

    async def _create(
        self,
        data: ArtifactWrite,
        ctx: ApiContext,
        principal: Principal,
        idempotency_key: str | None,
        supersedes: UUID | None,
    ) -> Response[ArtifactOut]:
        raw = msgspec.to_builtins(data)
        artifact, is_new = await anyio.to_thread.run_sync(
            lambda: knowledge(ctx).create_artifact(
                principal.context(data.caused_by),
                data,
                supersedes=supersedes,
                idempotency_key=idempotency_key,
                raw_body=raw,
            )
        )
        bind_correlation(artifact.correlation_id)
        location = f"/api/v1/artifacts/{artifact.id}"
        return created(artifact_out(artifact), location, artifact.version, created_now=is_new)

    @get("/", operation_id="listArtifacts")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        artifact_type: FromQuery[ArtifactType | None] = None,
        trajectory_id: FromQuery[UUID | None] = None,
        scope_id: FromQuery[UUID | None] = None,
        extraction_method: FromQuery[ExtractionMethod | None] = None,
        execution_id: FromQuery[UUID | None] = None,
        created_after: FromQuery[datetime | None] = None,
        created_before: FromQuery[datetime | None] = None,
        include_expired: FromQuery[bool] = False,
        include_superseded: FromQuery[bool] = False,
        order: FromQuery[Order] = "desc",
    ) -> Page[ArtifactOut]:
        """List live artifacts (the ``knowledge`` read model), newest first. Expired and
        superseded ones only when asked for."""
        w = window(created_after, created_before, include_expired, include_superseded, order, limit, offset)
        async with ctx.read_models.connection() as conn:
            rows, total = await list_artifacts(
                conn,
                principal.tenant_id,
                w,
                artifact_type=artifact_type,
                trajectory_id=trajectory_id,
                scope_id=scope_id,
                extraction_method=extraction_method,
                execution_id=execution_id,
            )
        return Page(items=[artifact_row(r) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{artifact_id:uuid}", operation_id="getArtifact")
    async def get_one(
        self, artifact_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[ArtifactOut]:
        """An artifact from the event store (no lag); a deleted one answers 404."""
        artifact = await knowledge_item(ctx, principal, Artifact, artifact_id)
        return with_etag(artifact_out(artifact), artifact.version)

    @patch("/{artifact_id:uuid}", operation_id="updateArtifact", opt={"scope": "write"})
    async def update(
        self,
        artifact_id: FromPath[UUID],
        data: JSONBody[ArtifactUpdate],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> Response[ArtifactOut]:
        """Change what the body gives (a new TTL counts from now); ``If-Match`` guards lost
        updates. A superseded or deleted artifact answers 409."""
        artifact = await guarded(
            if_match,
            lambda v: knowledge(ctx).update_artifact(
                principal.context(data.caused_by), artifact_id, data, expected_version=v
            ),
        )
        return with_etag(artifact_out(artifact), artifact.version)

    @delete("/{artifact_id:uuid}", operation_id="deleteArtifact", opt={"scope": "write"}, status_code=204)
    async def remove(
        self,
        artifact_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        if_match: IfMatch,
    ) -> None:
        """Delete: appends a tombstone event; the history stays in the event DAG."""
        await guarded(
            if_match, lambda v: knowledge(ctx).delete_artifact(principal.context(), artifact_id, expected_version=v)
        )
