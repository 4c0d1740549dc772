"""Read model of long-term memory: artifacts, notes, entity edges and their participants.

Serves the list endpoints (the CELLSTATE reference's filters, TTL and supersede visibility) and the edge
queries (by participant, breadth-first traversal). Deleted items keep their row, flagged,
so a rebuild from the log ends identical; a deleted edge's participant rows are removed,
since they only exist to be walked. Queries live in ``projections.knowledge_queries``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from psycopg import AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from projections.base import Handler, Projection

_ITEM = "tenant_id text NOT NULL, version bigint NOT NULL, last_event_id uuid NOT NULL,"
_LIFECYCLE = (
    " metadata jsonb NOT NULL, ttl jsonb NOT NULL, expires_at timestamptz, supersedes uuid, superseded_by uuid,"
    " execution_id uuid, node_id text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
    " deleted boolean NOT NULL DEFAULT false,"
)


def _touch(e: EventEnvelope) -> dict[str, Any]:
    return {"version": e.version, "event": e.event_id, "at": e.occurred_at, "tenant": e.tenant_id, "id": e.stream_id}


_TOUCH = "version = %(version)s, last_event_id = %(event)s, updated_at = %(at)s"


async def _artifact_created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO artifacts (tenant_id, artifact_id, version, last_event_id, name, artifact_type, content,"
        " content_hash, extraction_method, confidence, source_turn, trajectory_id, scope_id, metadata, ttl,"
        " expires_at, supersedes, execution_id, node_id, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            e.version,
            e.event_id,
            p["name"],
            p["artifact_type"],
            p["content"],
            p["content_hash"],
            p["extraction_method"],
            p.get("confidence"),
            p.get("source_turn"),
            p.get("trajectory_id"),
            p.get("scope_id"),
            Jsonb(p.get("metadata", {})),
            Jsonb(p.get("ttl", "persistent")),
            p.get("expires_at"),
            p.get("supersedes"),
            p.get("execution_id"),
            p.get("node_id"),
            e.occurred_at,
            e.occurred_at,
        ),
    )


async def _artifact_updated(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "UPDATE artifacts SET name = %(name)s, artifact_type = %(type)s, content = %(content)s,"
        " content_hash = %(hash)s, metadata = %(metadata)s, ttl = %(ttl)s, expires_at = %(expires)s, "
        + _TOUCH
        + " WHERE tenant_id = %(tenant)s AND artifact_id = %(id)s",
        {
            **_touch(e),
            "name": p["name"],
            "type": p["artifact_type"],
            "content": p["content"],
            "hash": p["content_hash"],
            "metadata": Jsonb(p.get("metadata", {})),
            "ttl": Jsonb(p.get("ttl", "persistent")),
            "expires": p.get("expires_at"),
        },
    )


async def _note_created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO notes (tenant_id, note_id, version, last_event_id, title, content, content_hash, note_type,"
        " abstraction_level, source_artifact_ids, source_note_ids, source_trajectory_ids, metadata, ttl,"
        " expires_at, supersedes, execution_id, node_id, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::uuid[], %s::uuid[], %s::uuid[], %s, %s, %s, %s, %s, %s,"
        " %s, %s) ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            e.version,
            e.event_id,
            p["title"],
            p["content"],
            p["content_hash"],
            p["note_type"],
            p.get("abstraction_level", "raw"),
            p.get("source_artifact_ids", []),
            p.get("source_note_ids", []),
            p.get("source_trajectory_ids", []),
            Jsonb(p.get("metadata", {})),
            Jsonb(p.get("ttl", "persistent")),
            p.get("expires_at"),
            p.get("supersedes"),
            p.get("execution_id"),
            p.get("node_id"),
            e.occurred_at,
            e.occurred_at,
        ),
    )


async def _note_updated(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "UPDATE notes SET title = %(title)s, content = %(content)s, content_hash = %(hash)s, note_type = %(type)s,"
        " abstraction_level = %(level)s, metadata = %(metadata)s, ttl = %(ttl)s, expires_at = %(expires)s, "
        + _TOUCH
        + " WHERE tenant_id = %(tenant)s AND note_id = %(id)s",
        {
            **_touch(e),
            "title": p["title"],
            "content": p["content"],
            "hash": p["content_hash"],
            "type": p["note_type"],
            "level": p.get("abstraction_level", "raw"),
            "metadata": Jsonb(p.get("metadata", {})),
            "ttl": Jsonb(p.get("ttl", "persistent")),
            "expires": p.get("expires_at"),
        },
    )


def _superseded(table: str, key: str) -> Handler:
    async def handle(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        await cur.execute(
            f"UPDATE {table} SET superseded_by = %(by)s, {_TOUCH} WHERE tenant_id = %(tenant)s AND {key} = %(id)s",
            {**_touch(e), "by": e.payload["superseded_by"]},
        )

    return handle


def _deleted(table: str, key: str) -> Handler:
    async def handle(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
        await cur.execute(
            f"UPDATE {table} SET deleted = true, {_TOUCH} WHERE tenant_id = %(tenant)s AND {key} = %(id)s", _touch(e)
        )
        if table == "edges":
            await cur.execute(
                "DELETE FROM edge_participants WHERE tenant_id = %s AND edge_id = %s", (e.tenant_id, e.stream_id)
            )

    return handle


async def _edge_created(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        "INSERT INTO edges (tenant_id, edge_id, version, last_event_id, edge_type, weight, provenance,"
        " trajectory_id, metadata, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            e.version,
            e.event_id,
            p["edge_type"],
            p.get("weight"),
            Jsonb(p.get("provenance", {})),
            p.get("trajectory_id"),
            Jsonb(p.get("metadata", {})),
            e.occurred_at,
            e.occurred_at,
        ),
    )
    parts = p["participants"]
    await cur.execute(
        "INSERT INTO edge_participants (tenant_id, edge_id, position, entity_id, entity_type, role, edge_type)"
        " SELECT %s, %s, x.position - 1, x.entity_id, x.entity_type, x.role, %s"
        " FROM unnest(%s::uuid[], %s::text[], %s::text[]) WITH ORDINALITY AS x(entity_id, entity_type, role, position)"
        " ON CONFLICT DO NOTHING",
        (
            e.tenant_id,
            e.stream_id,
            p["edge_type"],
            [x["entity_id"] for x in parts],
            [x["entity_type"] for x in parts],
            [x.get("role") for x in parts],
        ),
    )


async def _edge_updated(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    await cur.execute(
        f"UPDATE edges SET edge_type = %(type)s, weight = %(weight)s, metadata = %(metadata)s, {_TOUCH}"
        " WHERE tenant_id = %(tenant)s AND edge_id = %(id)s",
        {**_touch(e), "type": p["edge_type"], "weight": p.get("weight"), "metadata": Jsonb(p.get("metadata", {}))},
    )
    await cur.execute(
        "UPDATE edge_participants SET edge_type = %s WHERE tenant_id = %s AND edge_id = %s",
        (p["edge_type"], e.tenant_id, e.stream_id),
    )


class KnowledgeProjection(Projection):
    name: ClassVar[str] = "knowledge"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS artifacts (" + _ITEM + " artifact_id uuid NOT NULL, name text NOT NULL,"
        " artifact_type text NOT NULL, content text NOT NULL, content_hash text NOT NULL,"
        " extraction_method text NOT NULL, confidence double precision, source_turn integer,"
        " trajectory_id uuid, scope_id uuid," + _LIFECYCLE + " PRIMARY KEY (tenant_id, artifact_id))",
        "CREATE INDEX IF NOT EXISTS artifacts_created ON artifacts (tenant_id, created_at)",
        "CREATE INDEX IF NOT EXISTS artifacts_type ON artifacts (tenant_id, artifact_type, created_at)",
        "CREATE INDEX IF NOT EXISTS artifacts_trajectory ON artifacts (tenant_id, trajectory_id, created_at)",
        "CREATE INDEX IF NOT EXISTS artifacts_scope ON artifacts (tenant_id, scope_id, created_at)",
        "CREATE TABLE IF NOT EXISTS notes (" + _ITEM + " note_id uuid NOT NULL, title text NOT NULL,"
        " content text NOT NULL, content_hash text NOT NULL, note_type text NOT NULL,"
        " abstraction_level text NOT NULL, source_artifact_ids uuid[] NOT NULL, source_note_ids uuid[] NOT NULL,"
        " source_trajectory_ids uuid[] NOT NULL," + _LIFECYCLE + " PRIMARY KEY (tenant_id, note_id))",
        "CREATE INDEX IF NOT EXISTS notes_created ON notes (tenant_id, created_at)",
        "CREATE INDEX IF NOT EXISTS notes_type ON notes (tenant_id, note_type, created_at)",
        "CREATE INDEX IF NOT EXISTS notes_source_trajectories ON notes USING gin (source_trajectory_ids)",
        "CREATE INDEX IF NOT EXISTS notes_source_artifacts ON notes USING gin (source_artifact_ids)",
        "CREATE INDEX IF NOT EXISTS notes_source_notes ON notes USING gin (source_note_ids)",
        "CREATE TABLE IF NOT EXISTS edges (" + _ITEM + " edge_id uuid NOT NULL, edge_type text NOT NULL,"
        " weight double precision, provenance jsonb NOT NULL, trajectory_id uuid, metadata jsonb NOT NULL,"
        " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, deleted boolean NOT NULL DEFAULT false,"
        " PRIMARY KEY (tenant_id, edge_id))",
        "CREATE INDEX IF NOT EXISTS edges_created ON edges (tenant_id, created_at)",
        "CREATE INDEX IF NOT EXISTS edges_type ON edges (tenant_id, edge_type, created_at)",
        "CREATE INDEX IF NOT EXISTS edges_trajectory ON edges (tenant_id, trajectory_id, created_at)",
        # The edge type is copied here so a traversal filters by relation without a join.
        "CREATE TABLE IF NOT EXISTS edge_participants (tenant_id text NOT NULL, edge_id uuid NOT NULL,"
        " position integer NOT NULL, entity_id uuid NOT NULL, entity_type text NOT NULL, role text,"
        " edge_type text NOT NULL, PRIMARY KEY (tenant_id, edge_id, position))",
        "CREATE INDEX IF NOT EXISTS edge_participants_entity ON edge_participants (tenant_id, entity_id, edge_type)",
    ]
    handlers: ClassVar[dict[str, Handler]] = {
        "artifact.created": _artifact_created,
        "artifact.updated": _artifact_updated,
        "artifact.superseded": _superseded("artifacts", "artifact_id"),
        "artifact.deleted": _deleted("artifacts", "artifact_id"),
        "note.created": _note_created,
        "note.updated": _note_updated,
        "note.superseded": _superseded("notes", "note_id"),
        "note.deleted": _deleted("notes", "note_id"),
        "edge.created": _edge_created,
        "edge.updated": _edge_updated,
        "edge.deleted": _deleted("edges", "edge_id"),
    }
