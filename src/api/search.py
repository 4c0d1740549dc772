"""/api/v1/search, /api/v1/notes/search, /api/v1/artifacts/search: memory search (CELLSTATE reference).

The CELLSTATE reference's body (``query``, ``entity_types``, ``filters``, ``limit``, ``use_vector_search``) plus
``mode``, ``offset``, ``include_expired`` and ``include_superseded``; ``?as_of=<event id>``
searches memory as it was right after that event. Reads the ``memory_search`` read model.

A filter is ``{"field": ..., "op": ..., "value": ...}``; filters are AND-ed:

* ``entity_type``, ``trajectory_id``, ``scope_id``: ``eq`` one value or ``in`` a list;
* ``created_at``: ``gte`` (inclusive) or ``lt`` (exclusive) an ISO 8601 time;
* ``metadata``: ``contains`` a JSON object (``metadata @> value``);
* ``metadata.<key>[.<key>...]``: ``eq`` a JSON value at that path.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, JSONBody

from api.auth import Principal
from api.context import ApiContext
from domain.errors import FieldProblem, ValidationFailed
from projections.search_query import SearchFilters, SearchHit
from projections.search_service import MAX_DEPTH, SearchAsk, SearchMode

SEARCHABLE: Final = ("note", "artifact", "turn", "agent", "message")
SNIPPET_CHARS: Final = 240
_LINKS: Final = {
    "note": "/api/v1/notes/",
    "artifact": "/api/v1/artifacts/",
    "turn": "/api/v1/turns/",
    "agent": "/api/v1/agents/",
    "message": "/api/v1/messages/",
}


class FilterExpr(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    field: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    op: Literal["eq", "in", "gte", "lt", "contains"] = "eq"
    value: Any = None


class _Search(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``use_vector_search``: true ranks by embedding similarity (vector mode), false by keywords;
    ``mode`` picks any of the three. Neither: hybrid where vectors are available, else keyword."""

    query: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
    filters: Annotated[list[FilterExpr], msgspec.Meta(max_length=50)] = []
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_DEPTH - 1)] = 0
    use_vector_search: bool | None = None
    mode: SearchMode | None = None
    include_expired: bool = False
    include_superseded: bool = False


# Each route's body names the entity types it searches, so the schema refuses the others.
Searchable = Literal["note", "artifact", "turn", "agent", "message"]


class SearchRequest(_Search, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entity_types: Annotated[list[Searchable], msgspec.Meta(max_length=30)] = []


class NoteSearchRequest(_Search, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entity_types: Annotated[list[Literal["note"]], msgspec.Meta(max_length=30)] = []


class ArtifactSearchRequest(_Search, frozen=True, kw_only=True, forbid_unknown_fields=True):
    entity_types: Annotated[list[Literal["artifact"]], msgspec.Meta(max_length=30)] = []


AnySearch = SearchRequest | NoteSearchRequest | ArtifactSearchRequest


class SearchResult(msgspec.Struct, kw_only=True):
    entity_type: str
    entity_id: UUID
    #: ts_rank (keyword), cosine similarity (vector) or the RRF score (hybrid).
    score: float
    keyword_rank: int | None
    vector_rank: int | None
    title: str
    snippet: str
    content: str
    metadata: dict[str, Any]
    trajectory_id: UUID | None
    scope_id: UUID | None
    created_at: datetime
    expires_at: datetime | None
    superseded: bool
    #: The notification id of the event that wrote the version found.
    indexed_at: int
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")


class SearchResponse(msgspec.Struct, kw_only=True):
    results: list[SearchResult]
    #: Results this search can page through, counted up to 1,000.
    total: int
    limit: int
    offset: int
    mode: SearchMode
    as_of: UUID | None = None


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed([FieldProblem(field, message, code)])


def _convert(value: Any, kind: Any, field: str) -> Any:
    try:
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise _invalid(field, str(exc), "filter_value") from None


def _merge(a: Any, b: Any) -> tuple[bool, Any]:
    """Both containment conditions as one (objects merge, arrays concatenate); False: impossible."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            ok, out[key] = _merge(out[key], value) if key in out else (True, value)
            if not ok:
                return False, None
        return True, out
    if isinstance(a, list) and isinstance(b, list):
        return True, a + b
    if isinstance(a, list) != isinstance(b, list) and not isinstance(a, dict) and not isinstance(b, dict):
        # jsonb: an array contains a primitive value as if it were a one-element array.
        return True, [*a, b] if isinstance(a, list) else [a, *b]
    return a == b and isinstance(a, bool) == isinstance(b, bool), a


def parse_filters(body: AnySearch, types: tuple[str, ...]) -> SearchFilters | None:
    """The body's filters as engine filters; None when they cannot all hold (no results)."""
    unsearchable = sorted(set(body.entity_types) - set(types))
    if unsearchable:
        raise _invalid(
            "entity_types", f"not searchable here: {', '.join(unsearchable)}; use {', '.join(types)}", "unsearchable"
        )
    sets: dict[str, set[Any]] = {"entity_type": set(body.entity_types or types)}
    after: datetime | None = None
    before: datetime | None = None
    metadata: dict[str, Any] = {}
    for i, f in enumerate(body.filters):
        at = f"filters[{i}].value"
        if f.field in ("entity_type", "trajectory_id", "scope_id") and f.op in ("eq", "in"):
            kind = str if f.field == "entity_type" else UUID
            values = _convert(f.value, list[kind] if f.op == "in" else kind, at)  # type: ignore[valid-type]
            found = set(values) if f.op == "in" else {values}
            sets[f.field] = sets[f.field] & found if f.field in sets else found
        elif f.field == "created_at" and f.op in ("gte", "lt"):
            when = _convert(f.value, datetime, at)
            if f.op == "gte":
                after = when if after is None else max(after, when)
            else:
                before = when if before is None else min(before, when)
        elif (f.field == "metadata" and f.op == "contains") or (f.field.startswith("metadata.") and f.op == "eq"):
            condition = _convert(f.value, dict[str, Any], at) if f.op == "contains" else f.value
            for key in reversed(f.field.split(".")[1:]):
                if not key:
                    raise _invalid(f"filters[{i}].field", "a metadata path has no empty keys", "empty_key")
                condition = {key: condition}
            ok, metadata = _merge(metadata, condition)
            if not ok:
                return None
        else:
            raise _invalid(
                f"filters[{i}]",
                f"unsupported filter {f.field!r} {f.op!r}: use entity_type|trajectory_id|scope_id eq|in,"
                " created_at gte|lt, metadata contains, metadata.<key> eq",
                "unsupported_filter",
            )
    if any(not s for s in sets.values()):
        return None
    return SearchFilters(
        entity_types=sorted(sets["entity_type"]),
        trajectory_ids=sorted(sets.get("trajectory_id", ())),
        scope_ids=sorted(sets.get("scope_id", ())),
        created_after=after,
        created_before=before,
        metadata=metadata or None,
        include_expired=body.include_expired,
        include_superseded=body.include_superseded,
    )


def snippet(text: str, query: str) -> str:
    """About ``SNIPPET_CHARS`` of ``text`` around the first query word it contains."""
    lowered = text.lower()
    found = [i for w in re.findall(r"\w{3,}", query.lower()) if (i := lowered.find(w)) >= 0]
    start = max(0, min(found) - SNIPPET_CHARS // 4) if found else 0
    piece = text[start : start + SNIPPET_CHARS].strip()
    return ("…" if start > 0 else "") + piece + ("…" if start + SNIPPET_CHARS < len(text) else "")


def _result(hit: SearchHit, query: str) -> SearchResult:
    return SearchResult(
        entity_type=hit.entity_type,
        entity_id=hit.entity_id,
        score=hit.score,
        keyword_rank=hit.keyword_rank,
        vector_rank=hit.vector_rank,
        title=hit.title,
        snippet=snippet(hit.text, query),
        content=hit.text,
        metadata=hit.metadata,
        trajectory_id=hit.trajectory_id,
        scope_id=hit.scope_id,
        created_at=hit.created_at,
        expires_at=hit.expires_at,
        superseded=hit.superseded,
        indexed_at=hit.version,
        links={"self": _LINKS[hit.entity_type] + str(hit.entity_id)},
    )


async def run_search(
    ctx: ApiContext, tenant_id: str, body: AnySearch, types: tuple[str, ...], as_of: UUID | None
) -> SearchResponse:
    limit = body.limit or 10
    if body.offset + limit > MAX_DEPTH:
        raise _invalid("offset", f"offset + limit may reach result {MAX_DEPTH} at most", "beyond_depth")
    if not body.query.strip():
        raise _invalid("query", "the query is blank", "blank")
    ask = SearchAsk(
        query=body.query,
        filters=parse_filters(body, types),
        limit=limit,
        offset=body.offset,
        mode=body.mode,
        use_vector_search=body.use_vector_search,
        as_of=as_of,
    )
    page = await ctx.search.search(tenant_id, ask)
    return SearchResponse(
        results=[_result(h, body.query) for h in page.hits],
        total=page.total,
        limit=limit,
        offset=body.offset,
        mode=page.mode,
        as_of=as_of,
    )


AsOf = FromQuery[UUID | None]


class SearchController(Controller):
    path = "/api/v1"
    tags = ["memory"]

    @post("/search", operation_id="searchMemory", status_code=200)
    async def search_all(
        self,
        data: JSONBody[SearchRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        as_of: AsOf = None,
    ) -> SearchResponse:
        """Search notes, artifacts, turns, agents and messages (``entity_types`` narrows it). Expired and superseded
        items only when asked for; ``as_of`` sees memory as it was right after that event. Vector
        or hybrid search on a database without pgvector answers 501."""
        return await run_search(ctx, principal.tenant_id, data, SEARCHABLE, as_of)

    @post("/notes/search", operation_id="searchNotes", status_code=200)
    async def search_notes(
        self,
        data: JSONBody[NoteSearchRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        as_of: AsOf = None,
    ) -> SearchResponse:
        """Search notes only (as ``/search``; other ``entity_types`` answer 422)."""
        return await run_search(ctx, principal.tenant_id, data, ("note",), as_of)

    @post("/artifacts/search", operation_id="searchArtifacts", status_code=200)
    async def search_artifacts(
        self,
        data: JSONBody[ArtifactSearchRequest],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        as_of: AsOf = None,
    ) -> SearchResponse:
        """Search artifacts only (as ``/search``; other ``entity_types`` answer 422)."""
        return await run_search(ctx, principal.tenant_id, data, ("artifact",), as_of)
