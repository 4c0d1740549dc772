"""Memory search read model (schema ``rm_search``): one row per version of each indexed item.

Notes, artifacts, turns (any memory entity) are indexed as *documents*: a title and a text for
full-text search, a 384-dim embedding for vector search, and the columns search filters on. Every
change writes a new version and closes the previous one: a version is valid from the
notification id of the event that wrote it (``valid_from``) up to, not including, the one of the
event that replaced it (``valid_to``, NULL while current). Searching "as of" a notification id
therefore sees superseded and deleted items as they were then; a deletion writes a tombstone
version (``deleted``) so the current view drops the item while its history stays.

pgvector is optional: the DDL creates the extension when it can and adds the ``embedding`` column
and its HNSW index only when it exists. Without it keyword search works unchanged and vector or
hybrid search raises :class:`VectorSearchUnavailable` (the API answers 501).

Writers (projection handlers) use unqualified table names under the projection's ``search_path``
(so a rebuild can write into a fresh schema) unless given ``schema``. The queries are in
:mod:`projections.search_query`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Final
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.types.json import Jsonb

from projections.embedding import DIMENSIONS, MODEL_ID, to_pgvector
from projections.search_bm25 import BM25_DDL, reindex

SCHEMA: Final = "rm_search"
#: Full-text indexing reads at most this many characters of a text: a tsvector is capped at 1 MB.
TSV_MAX_CHARS: Final = 200_000


class VectorSearchUnavailable(Exception):
    """Vector or hybrid search was asked of a database without pgvector (keyword search works)."""


_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS documents ("
    " tenant_id text NOT NULL, entity_type text NOT NULL, entity_id uuid NOT NULL,"
    " valid_from bigint NOT NULL, valid_to bigint,"
    " title text NOT NULL DEFAULT '', text text NOT NULL, metadata jsonb NOT NULL DEFAULT '{}',"
    " trajectory_id uuid, scope_id uuid, created_at timestamptz NOT NULL, expires_at timestamptz,"
    " superseded boolean NOT NULL DEFAULT false, deleted boolean NOT NULL DEFAULT false,"
    " embedding_model text,"
    # Title terms weigh A, text terms B (BM25 counts an A position as TITLE_WEIGHT B ones: search_bm25).
    " tsv tsvector GENERATED ALWAYS AS ("
    "  setweight(to_tsvector('english'::regconfig, left(title, 1000)), 'A')"
    f" || setweight(to_tsvector('english'::regconfig, left(text, {TSV_MAX_CHARS})), 'B')) STORED,"
    " PRIMARY KEY (tenant_id, entity_type, entity_id, valid_from),"
    " CHECK (valid_to IS NULL OR valid_to > valid_from))"
)
_INDEX_DDL = [
    "CREATE UNIQUE INDEX IF NOT EXISTS documents_current ON documents (tenant_id, entity_type, entity_id)"
    " WHERE valid_to IS NULL",
    "CREATE INDEX IF NOT EXISTS documents_tsv ON documents USING gin (tsv)",
    "CREATE INDEX IF NOT EXISTS documents_metadata ON documents USING gin (metadata jsonb_path_ops)",
    "CREATE INDEX IF NOT EXISTS documents_created ON documents (tenant_id, created_at)",
    "CREATE INDEX IF NOT EXISTS documents_trajectory ON documents (tenant_id, trajectory_id)"
    " WHERE trajectory_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS documents_scope ON documents (tenant_id, scope_id) WHERE scope_id IS NOT NULL",
]
# A DO block, so the DDL stays a list of plain statements (Projection.ddl) and a database
# without pgvector (or without the right to create it) degrades instead of failing. The
# extension goes to ``public``: under the projection's search_path it would otherwise land in
# rm_search itself and vanish with a rebuild's schema swap. The HNSW index covers current
# versions only, the ones normal searches ask for; as-of searches scan exactly.
_VECTOR_DDL = f"""DO $quipu$
DECLARE ext_schema text;
BEGIN
  BEGIN
    CREATE EXTENSION IF NOT EXISTS vector SCHEMA public;
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pgvector unavailable (%): memory search is keyword-only', SQLERRM;
  END;
  SELECT n.nspname INTO ext_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'vector';
  IF ext_schema IS NOT NULL THEN
    EXECUTE format('ALTER TABLE documents ADD COLUMN IF NOT EXISTS embedding %I.vector({DIMENSIONS})', ext_schema);
    EXECUTE format('CREATE INDEX IF NOT EXISTS documents_embedding ON documents'
                   ' USING hnsw (embedding %I.vector_cosine_ops) WHERE valid_to IS NULL', ext_schema);
  END IF;
END $quipu$"""


def search_ddl(*, vectors: bool = True) -> list[str]:
    """The projection's DDL. ``vectors=False`` builds the keyword-only schema even where
    pgvector exists (what a database without it gets; tests use it to exercise that path)."""
    return [_TABLE_DDL, *_INDEX_DDL, *BM25_DDL, *([_VECTOR_DDL] if vectors else [])]


async def create_search_schema(conn: AsyncConnection[Any], *, schema: str = SCHEMA, vectors: bool = True) -> None:
    """Create ``schema`` and its tables outside the projector (tests, benchmarks)."""
    async with conn.transaction():
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        await conn.execute("SELECT set_config('search_path', %s, true)", (sql.Identifier(schema).as_string(conn),))
        for stmt in search_ddl(vectors=vectors):
            await conn.execute(stmt)


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """What a memory item contributes to search."""

    tenant_id: str
    entity_type: str
    entity_id: UUID
    text: str
    created_at: datetime
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    trajectory_id: UUID | None = None
    scope_id: UUID | None = None
    expires_at: datetime | None = None
    superseded: bool = False


class Keep(Enum):
    """Marks a :func:`patch_document` argument whose value stays as it is."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP

_COPIED = ("tenant_id", "entity_type", "entity_id", "title", "text", "trajectory_id", "scope_id", "created_at")


def _table(schema: str | None) -> sql.Composable:
    return sql.Identifier(schema, "documents") if schema else sql.Identifier("documents")


def _key_where() -> sql.SQL:
    return sql.SQL("tenant_id = %(tenant)s AND entity_type = %(type)s AND entity_id = %(id)s")


async def _close_current(
    cur: AsyncCursor[Any], table: sql.Composable, params: dict[str, Any], *, tombstone: bool = False
) -> None:
    """End the current version at ``nid`` (a no-op when the event was already applied). A
    tombstone is ended only by a new write (``tombstone``), never by a patch or a second delete."""
    await cur.execute(
        sql.SQL(
            "UPDATE {t} SET valid_to = %(nid)s WHERE {k} AND valid_to IS NULL AND valid_from < %(nid)s{live}"
        ).format(t=table, k=_key_where(), live=sql.SQL("" if tombstone else " AND NOT deleted")),
        params,
    )


async def upsert_document(
    cur: AsyncCursor[Any],
    doc: Document,
    *,
    notification_id: int,
    embedding: Any = None,
    schema: str | None = None,
) -> None:
    """Write ``doc`` as the version valid from ``notification_id``, closing the previous one.

    ``embedding`` is the vector of the document (see :mod:`projections.embedding`), or None
    to leave the version out of vector search. Passing one to a keyword-only schema fails
    (``vectors_available`` tells the caller whether to embed at all). Re-applying the same
    event rewrites the same version; events must arrive in notification order, as projections
    guarantee.
    """
    table = _table(schema)
    params: dict[str, Any] = {
        "tenant": doc.tenant_id,
        "type": doc.entity_type,
        "id": doc.entity_id,
        "nid": notification_id,
        "title": doc.title,
        "text": doc.text,
        "metadata": Jsonb(dict(doc.metadata)),
        "trajectory": doc.trajectory_id,
        "scope": doc.scope_id,
        "created": doc.created_at,
        "expires": doc.expires_at,
        "superseded": doc.superseded,
        "model": MODEL_ID if embedding is not None else None,
    }
    columns: sql.Composable = sql.SQL(
        "tenant_id, entity_type, entity_id, valid_from, title, text, metadata, trajectory_id, scope_id,"
        " created_at, expires_at, superseded, deleted, embedding_model"
    )
    values: sql.Composable = sql.SQL(
        "%(tenant)s, %(type)s, %(id)s, %(nid)s, %(title)s, %(text)s, %(metadata)s, %(trajectory)s, %(scope)s,"
        " %(created)s, %(expires)s, %(superseded)s, false, %(model)s"
    )
    updates: sql.Composable = sql.SQL(
        "title = excluded.title, text = excluded.text, metadata = excluded.metadata,"
        " trajectory_id = excluded.trajectory_id, scope_id = excluded.scope_id, created_at = excluded.created_at,"
        " expires_at = excluded.expires_at, superseded = excluded.superseded, deleted = false,"
        " embedding_model = excluded.embedding_model"
    )
    if embedding is not None:
        # Sent untyped: the column's type converts it, wherever the extension's schema is.
        params["embedding"] = to_pgvector(embedding)
        columns = sql.SQL("{}, embedding").format(columns)
        values = sql.SQL("{}, %(embedding)s").format(values)
        updates = sql.SQL("{}, embedding = excluded.embedding").format(updates)
    await _close_current(cur, table, params, tombstone=True)
    await cur.execute(
        sql.SQL(
            "INSERT INTO {t} ({c}) VALUES ({v})"
            " ON CONFLICT (tenant_id, entity_type, entity_id, valid_from) DO UPDATE SET {u}"
        ).format(t=table, c=columns, v=values, u=updates),
        params,
    )
    await reindex(cur, doc.tenant_id, doc.entity_type, doc.entity_id, schema)


async def retire_document(
    cur: AsyncCursor[Any],
    tenant_id: str,
    entity_type: str,
    entity_id: UUID,
    *,
    notification_id: int,
    schema: str | None = None,
) -> None:
    """The item was deleted at ``notification_id``: a tombstone version replaces the live one.

    Earlier versions stay, so as-of searches before the deletion still find the item.
    Deleting an unknown or already deleted item changes nothing.
    """
    table = _table(schema)
    params = {"tenant": tenant_id, "type": entity_type, "id": entity_id, "nid": notification_id}
    await _close_current(cur, table, params)
    copied = sql.SQL(", ").join(map(sql.Identifier, _COPIED))
    await cur.execute(
        sql.SQL(
            "INSERT INTO {t} ({c}, metadata, expires_at, superseded, valid_from, deleted)"
            " SELECT {c}, metadata, expires_at, superseded, %(nid)s, true FROM {t}"
            " WHERE {k} AND valid_to = %(nid)s AND NOT deleted ON CONFLICT DO NOTHING"
        ).format(t=table, c=copied, k=_key_where()),
        params,
    )
    await reindex(cur, tenant_id, entity_type, entity_id, schema)


async def patch_document(
    cur: AsyncCursor[Any],
    tenant_id: str,
    entity_type: str,
    entity_id: UUID,
    *,
    notification_id: int,
    superseded: bool | Keep = KEEP,
    expires_at: datetime | Keep | None = KEEP,
    metadata: Mapping[str, Any] | Keep = KEEP,
    schema: str | None = None,
) -> None:
    """A new version that differs from the live one only in the given fields (e.g. a note
    marked superseded, a TTL changed): text and embedding are carried over, not recomputed.
    Patching an unknown or deleted item changes nothing."""
    table = _table(schema)
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "type": entity_type,
        "id": entity_id,
        "nid": notification_id,
        "set_superseded": superseded is not KEEP,
        "superseded": superseded if superseded is not KEEP else None,
        "set_expires": expires_at is not KEEP,
        "expires": expires_at if expires_at is not KEEP else None,
        "set_metadata": metadata is not KEEP,
        "metadata": Jsonb(dict(metadata)) if not isinstance(metadata, Keep) else None,
    }
    carried = [*_COPIED, "embedding_model"]
    if await _has_embedding(cur, schema):
        carried.append("embedding")
    copied = sql.SQL(", ").join(map(sql.Identifier, carried))
    await _close_current(cur, table, params)
    await cur.execute(
        sql.SQL(
            "INSERT INTO {t} ({c}, metadata, expires_at, superseded, valid_from, deleted)"
            " SELECT {c},"
            " CASE WHEN %(set_metadata)s THEN %(metadata)s::jsonb ELSE metadata END,"
            " CASE WHEN %(set_expires)s THEN %(expires)s::timestamptz ELSE expires_at END,"
            " CASE WHEN %(set_superseded)s THEN %(superseded)s::boolean ELSE superseded END,"
            " %(nid)s, false FROM {t}"
            " WHERE {k} AND valid_to = %(nid)s AND NOT deleted ON CONFLICT DO NOTHING"
        ).format(t=table, c=copied, k=_key_where()),
        params,
    )


async def _has_embedding(cur: AsyncCursor[Any], schema: str | None) -> bool:
    """Whether the documents table (under ``search_path`` unless ``schema``) has vectors."""
    name = sql.Identifier(schema, "documents") if schema else sql.Identifier("documents")
    await cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s)"
        " AND attname = 'embedding' AND NOT attisdropped) AS present",
        (name.as_string(cur),),
    )
    row = await cur.fetchone()
    return bool(_first(row))


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, Mapping) else row[0]


async def vectors_available(conn: AsyncConnection[Any] | AsyncCursor[Any], *, schema: str | None = SCHEMA) -> bool:
    """Whether this index can store and search vectors (pgvector present and the column made)."""
    if isinstance(conn, AsyncCursor):
        return await _has_embedding(conn, schema)
    async with conn.cursor() as cur:
        return await _has_embedding(cur, schema)
