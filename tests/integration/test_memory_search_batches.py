"""The memory search projector embeds a batch at once and still applies it exactly once.

Batches of real envelopes go through the applier into ``rm_memory_search`` with the real
embedding model: every new item's text is embedded in one call before the handlers run, each
document gets the vector of its own text, a redelivered batch changes nothing, and a
connection killed in the middle of a batch (after some of its rows were written) leaves
neither rows nor position behind, so applying the batch again ends exactly as one clean
application does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from domain.envelope import EventEnvelope
from domain.ids import uuid7
from projections import memory_search
from projections.applier import apply_batch, ensure_schema
from projections.embedding import embed_async, get_embedder
from projections.memory_search import MemorySearchProjection
from projections.search_documents import embedding_text

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _envelope(nid: int, kind: str, tenant: str, stream: uuid.UUID, payload: dict[str, Any]) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid7(),
        kind=kind,
        code=0xD401 if kind == "note.created" else 0xD402,
        tenant_id=tenant,
        stream_id=stream,
        version=1 if kind == "note.created" else 2,
        correlation_id=stream,
        parent_ids=[],
        depth=0,
        actor="test",
        occurred_at=NOW,
        payload=payload,
        hash="0" * 64,
        notification_id=nid,
    )


def _batch(run: str) -> tuple[list[EventEnvelope], dict[uuid.UUID, tuple[str, str]]]:
    """30 notes over two tenants (two with the same text), then one of them rewritten."""
    envelopes, final = [], {}
    for i in range(30):
        stream = uuid.uuid4()
        title, content = f"note {i % 28} {run}", f"measurements of the boundary layer, series {i % 28} ({run})"
        payload = {"title": title, "content": content, "metadata": {"i": i}}
        envelopes.append(_envelope(i + 1, "note.created", ("a", "b")[i % 2], stream, payload))
        final[stream] = (title, content)
    rewritten = envelopes[3]
    title, content = f"rewritten {run}", f"a new text about shock waves ({run})"
    envelopes.append(_envelope(31, "note.updated", "b", rewritten.stream_id, {"title": title, "content": content}))
    final[rewritten.stream_id] = (title, content)
    return envelopes, final


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[AsyncConnection[DictRow]]:
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as c:
        await ensure_schema(c, MemorySearchProjection())
        yield c


async def _state(conn: AsyncConnection[DictRow]) -> tuple[int, list[dict[str, Any]]]:
    cur = await conn.execute("SELECT notification_id FROM rm_memory_search.tracking")
    position = (await cur.fetchone() or {"notification_id": -1})["notification_id"]
    cur = await conn.execute(
        "SELECT entity_id, valid_from, valid_to, title, text, embedding::text AS vector"
        " FROM rm_memory_search.documents ORDER BY entity_id, valid_from"
    )
    return int(position), await cur.fetchall()


def _spy(monkeypatch: pytest.MonkeyPatch, on_call: Any = None) -> list[int]:
    """Records how many texts each embedding call got (the real model still embeds them)."""
    sizes: list[int] = []

    async def embed(texts: Sequence[str]) -> Any:
        sizes.append(len(texts))
        if on_call is not None:
            await on_call(len(sizes))
        return await embed_async(texts)

    monkeypatch.setattr(memory_search, "embed_async", embed)
    return sizes


async def test_a_batch_is_embedded_at_once_and_applied_exactly_once(
    conn: AsyncConnection[DictRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    envelopes, final = _batch(uuid.uuid4().hex)
    sizes = _spy(monkeypatch)
    assert await apply_batch(conn, MemorySearchProjection(), envelopes) == 31
    assert sizes == [28, 1]  # the new notes' distinct texts at once, then the rewrite's text
    position, rows = await _state(conn)
    assert position == 31
    current = {r["entity_id"]: r for r in rows if r["valid_to"] is None}
    assert len(rows) == 31 and current.keys() == final.keys()
    model = get_embedder()
    for entity, (title, content) in final.items():
        row = current[entity]
        assert (row["title"], row["text"]) == (title, content)
        stored = np.array([float(x) for x in row["vector"].strip("[]").split(",")])
        assert np.abs(stored - model.embed_one(embedding_text(title, content))).max() < 1e-5  # its own text's
    assert await apply_batch(conn, MemorySearchProjection(), envelopes) == 0  # redelivered
    assert await _state(conn) == (position, rows)


async def test_a_connection_killed_mid_batch_leaves_nothing_and_a_retry_applies_it_once(
    database_url: str, conn: AsyncConnection[DictRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    envelopes, _ = _batch(uuid.uuid4().hex)
    victim = await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row)
    pid = victim.info.backend_pid

    async def kill_at_the_rewrite(call: int) -> None:
        if call == 2:  # the update's handler, after the new notes' rows were sent
            await conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await asyncio.sleep(0.2)

    _spy(monkeypatch, kill_at_the_rewrite)
    with pytest.raises(psycopg.OperationalError):
        await apply_batch(victim, MemorySearchProjection(), envelopes)
    assert await _state(conn) == (0, [])  # nothing of the batch, not even the position
    monkeypatch.undo()
    assert await apply_batch(conn, MemorySearchProjection(), envelopes) == 31
    position, rows = await _state(conn)
    assert position == 31 and len(rows) == 31 and sum(r["valid_to"] is None for r in rows) == 30
    cur = await conn.execute("SELECT sum(docs) AS n FROM rm_memory_search.corpus")
    assert (await cur.fetchone() or {})["n"] == 30  # keyword statistics count each note once
