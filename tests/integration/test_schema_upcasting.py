"""A kind changes shape after real events exist: every read path sees the current shape,
and the stored bytes and hashes never change (docs/decisions/0008-event-schema-versions.md).

``gadget.created`` (tests/schema_versions.py) is stored at version 1 as ``{name}``, then the
kind moves to version 2 (``{first_name, last_name}``) with an upcaster. Checked afterwards:
replay (an aggregate load from the log), state as of a version, a projector rebuild, the
log as the relay and consumers read it, forensic walks and envelopes over HTTP, and hash
verification of the old events and of new ones written at version 2 on top of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row

from bus.subjects import Subjects
from commands import log
from domain.aggregate import CommandContext
from domain.envelope import EventEnvelope
from projections.base import Handler, Projection
from projections.rebuild import rebuild
from tests.integration.conftest import Running, running_quipu
from tests.schema_versions import CREATED, Gadget, GadgetCreatedV2, release_1, release_2

CTX = CommandContext("acme", "tester")


async def _gadget_row(cur: AsyncCursor[DictRow], envelope: EventEnvelope) -> None:
    p = envelope.payload
    await cur.execute(
        "INSERT INTO gadgets (id, first_name, last_name) VALUES (%s, %s, %s)",
        (envelope.stream_id, p["first_name"], p["last_name"]),
    )


class Gadgets(Projection):
    """A read model written for the current shape only: it knows nothing of ``name``."""

    name = "schema_test_gadgets"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS gadgets (id uuid PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL)"
    ]
    handlers: ClassVar[dict[str, Handler]] = {CREATED: _gadget_row}


@pytest.fixture
async def quipu(database_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Running]:
    async with running_quipu(database_url, nats_url, subjects, background=False) as running:
        yield running


def _stored(database_url: str) -> list[tuple[Any, ...]]:
    """Every stored event's bytes and DAG hash, to prove nothing was rewritten."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT e.notification_id, e.state, d.hash FROM quipu_events e"
            " JOIN event_dag d USING (notification_id) ORDER BY e.notification_id"
        ).fetchall()
    return [(n, bytes(state), digest) for n, state, digest in rows]


async def test_a_v1_event_is_read_in_the_v2_shape_everywhere(
    quipu: Running, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, client, auth = quipu.ctx.store, quipu.client, quipu.auth()
    release_1(monkeypatch)
    gadget = Gadget.create(CTX, name="Ada Lovelace")
    gadget.touch(CTX, "first note")
    await asyncio.to_thread(store.save_all, gadget)
    created_id = store.events_of(gadget.id)[0].event_id
    before = _stored(database_url)
    assert b'"name":"Ada Lovelace"' in before[-2][1] and b"schema_version" not in before[-2][1]
    assert (await asyncio.to_thread(store.load, Gadget, gadget.id, "acme")).name == "Ada Lovelace"

    release_2(monkeypatch)  # the deploy: gadget.created is at version 2 from here on

    # Replay: the aggregate is rebuilt from the log through the current class.
    loaded = await asyncio.to_thread(store.load, Gadget, gadget.id, "acme", snapshots=False)
    assert (loaded.name, loaded.first_name, loaded.last_name, loaded.notes) == (None, "Ada", "Lovelace", ["first note"])
    assert isinstance(store.events_of(gadget.id)[0], GadgetCreatedV2)
    # State as of a version.
    as_of = await asyncio.to_thread(store.load, Gadget, gadget.id, "acme", version=1)
    assert (as_of.version, as_of.first_name, as_of.notes) == (1, "Ada", [])

    # New events at version 2 beside and on top of the old ones.
    other = Gadget.create(CommandContext("acme", "tester", (created_id,)), first_name="Grace", last_name="Hopper")
    other.touch(CTX, "second note")
    await asyncio.to_thread(store.save_all, other)
    new_created = store.events_of(other.id)[0]
    after = _stored(database_url)
    assert after[: len(before)] == before  # stored bytes and hashes untouched
    assert b'"schema_version":2' in after[len(before)][1]

    # The log as the relay, consumers and rebuilds read it.
    async with (
        await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn,
        await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as reader,
    ):
        envelopes = await log.read_after(reader, 0, 100)
        created = [e for e in envelopes if e.kind == CREATED]
        assert [e.payload for e in created] == [
            {"first_name": "Ada", "last_name": "Lovelace"},
            {"first_name": "Grace", "last_name": "Hopper"},
        ]
        # A projector rebuild, written against the current shape only.
        projection = Gadgets()
        await rebuild(conn, projection, lambda a, u: log.batches(reader, a, u), lambda: log.head(reader))
        cur = await conn.execute("SELECT first_name, last_name FROM rm_schema_test_gadgets.gadgets ORDER BY first_name")
        assert [tuple(r.values()) for r in await cur.fetchall()] == [("Ada", "Lovelace"), ("Grace", "Hopper")]
        await conn.execute("DROP SCHEMA rm_schema_test_gadgets CASCADE")

    # Forensic walks and envelopes over HTTP, and hash verification of both versions.
    r = await client.get(f"/api/v1/event-dag/{created_id}", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["payload"] == {"first_name": "Ada", "last_name": "Lovelace"}
    assert r.json()["hash"] == before[-2][2].strip()
    r = await client.get(f"/api/v1/event-dag/{new_created.event_id}/ancestors", headers=auth)
    assert r.status_code == 200, r.text
    assert [i["event"]["payload"] for i in r.json()["items"]] == [{"first_name": "Ada", "last_name": "Lovelace"}]
    for event_id in (created_id, new_created.event_id, store.events_of(other.id)[1].event_id):
        r = await client.get(f"/api/v1/event-dag/{event_id}/verify", headers=auth)
        assert r.status_code == 200 and r.json()["ok"] is True, r.text
