"""The application recorder that writes the event DAG index in the append transaction."""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from commands import migrations
from domain.events import event_class
from domain.hashing import depth_from, event_hash


class _Header(msgspec.Struct):
    """The part of a stored event the DAG index needs; the payload is skipped."""

    event_id: UUID
    tenant_id: str
    correlation_id: UUID
    parent_ids: list[UUID]
    timestamp: str


_decode_header = msgspec.json.Decoder(_Header).decode
KNOWN_EVENTS = 4096  # committed events whose tenant, depth and hash are remembered
Known = tuple[str, int, str]  # tenant, depth, hash of a committed event


class CausalLinkError(IntegrityError):
    """A parent does not exist or belongs to another tenant: the append is rolled back."""


class DagRecorder(PostgresApplicationRecorder):
    """eventsourcing's Postgres recorder plus ``event_dag`` and ``event_edges`` rows.

    The rows are written after the events' notification ids are known and before the
    library commits, on the same cursor, so an append and its DAG index commit together
    or not at all. Depth and hash need the parents' rows, which committed earlier (or sit
    earlier in this same batch) - never later, because parents always exist first.
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = datastore.schema or "public"
        self._schema = schema
        # A new event's parents are nearly always events this process appended a moment
        # ago (the stream's previous event, the completions a node waited for). Committed
        # rows never change (invariant 3), so remembering them spares the parents' query
        # inside the table lock; only rows of committed transactions are remembered.
        self._known: OrderedDict[UUID, Known] = OrderedDict()
        self._known_lock = threading.Lock()
        self._indexed = threading.local()
        self._select_parents = _sql(
            f"SELECT event_id, tenant_id, depth, hash FROM {schema}.event_dag WHERE event_id = ANY(%s)"
        )
        # One statement for the whole batch: DAG rows and edges from parallel arrays
        # (parent lists travel as uuid[] literals because SQL arrays cannot be ragged).
        self._insert_index = _sql(
            f"WITH dag AS (INSERT INTO {schema}.event_dag (event_id, notification_id, tenant_id, stream_id,"
            " version, kind, code, correlation_id, parent_ids, depth, hash, occurred_at)"
            " SELECT e, n, t, s, v, k, c, r, p::uuid[], d, h, o FROM unnest("
            "%(e)s::uuid[], %(n)s::bigint[], %(t)s::text[], %(s)s::uuid[], %(v)s::bigint[], %(k)s::text[],"
            " %(c)s::int[], %(r)s::uuid[], %(p)s::text[], %(d)s::int[], %(h)s::text[], %(o)s::timestamptz[])"
            " AS x(e, n, t, s, v, k, c, r, p, d, h, o))"
            f" INSERT INTO {schema}.event_edges (parent_id, child_id)"
            " SELECT parent, child FROM unnest(%(ep)s::uuid[], %(ec)s::uuid[]) AS y(parent, child)"
        )

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # Every process migrates at start-up; several may start at once, so the pending
        # migrations run under the DDL lock (docs/decisions/0009-write-side-migrations.md).
        migrations.lock(curs)
        migrations.apply(curs, self._schema)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._indexed.rows = []
        notification_ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        rows: list[tuple[UUID, Known]] = self._indexed.rows  # committed by now
        with self._known_lock:
            for event_id, known in rows:
                self._known[event_id] = known
            while len(self._known) > KNOWN_EVENTS:
                self._known.popitem(last=False)
        return notification_ids

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert notification_ids is not None
        try:
            self._index(curs, stored_events, notification_ids)
        except BaseException:
            self._abort(curs)
            raise
        return notification_ids

    @staticmethod
    def _abort(curs: Cursor[DictRow]) -> None:
        """Make the database itself fail the transaction.

        The library catches exceptions raised here and commits unless Postgres reported
        an error, so a Python-side refusal alone would let the events commit without
        their DAG rows. An aborted transaction turns that COMMIT into a ROLLBACK.
        """
        with contextlib.suppress(psycopg.Error), curs.connection.pipeline():
            curs.execute(_sql("DO $$ BEGIN RAISE EXCEPTION 'quipu: append refused'; END $$"))

    def _index(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        notification_ids: Sequence[int],
    ) -> None:
        headers = [_decode_header(e.state) for e in stored_events]
        in_batch = {h.event_id for h in headers}
        outside = list({p for h in headers for p in h.parent_ids if p not in in_batch})
        known: dict[UUID, Known] = {}
        with self._known_lock:
            for parent_id in outside:
                if (remembered := self._known.get(parent_id)) is not None:
                    known[parent_id] = remembered
        unknown = [p for p in outside if p not in known]
        if unknown:
            curs.execute(self._select_parents, (unknown,), prepare=True)
            for row in curs.fetchall():
                known[row["event_id"]] = (row["tenant_id"], row["depth"], row["hash"].strip())
        columns: dict[str, list[Any]] = {
            key: [] for key in ("e", "n", "t", "s", "v", "k", "c", "r", "p", "d", "h", "o", "ep", "ec")
        }
        for stored, header, notification_id in zip(stored_events, headers, notification_ids, strict=True):
            parents: list[tuple[str, int, str]] = []
            for parent_id in header.parent_ids:
                parent = known.get(parent_id)
                if parent is None or parent[0] != header.tenant_id:
                    raise CausalLinkError(f"unknown parent event {parent_id}")
                parents.append(parent)
                columns["ep"].append(parent_id)
                columns["ec"].append(header.event_id)
            depth = depth_from([p[1] for p in parents])
            digest = event_hash(stored.state, depth, [p[2] for p in parents])
            known[header.event_id] = (header.tenant_id, depth, digest)
            for key, value in (
                ("e", header.event_id),
                ("n", notification_id),
                ("t", header.tenant_id),
                ("s", stored.originator_id),
                ("v", stored.originator_version),
                ("k", stored.topic),
                ("c", event_class(stored.topic).CODE),
                ("r", header.correlation_id),
                ("p", "{" + ",".join(map(str, header.parent_ids)) + "}"),
                ("d", depth),
                ("h", digest),
                ("o", header.timestamp),
            ):
                columns[key].append(value)
        curs.execute(self._insert_index, columns, prepare=True)
        self._indexed.rows = [(h.event_id, known[h.event_id]) for h in headers]


def _sql(text: str) -> SQL:
    # Table names come from configuration, not from users; SQL() marks them as trusted.
    return SQL(text)
