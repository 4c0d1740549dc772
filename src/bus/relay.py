"""The relay: the only writer to NATS. Tails the notification log and publishes in order.

Position is stored in Postgres only after JetStream acknowledged, so a crash re-sends at
most one batch and JetStream drops the repeats by ``Nats-Msg-Id``. Several relays may run:
a Postgres advisory lock makes exactly one of them active, the others wait to take over.

One event can never stop the relay: an event the bus refuses for a reason retrying cannot
fix (larger than its ``max_payload``, or refused by JetStream as too large) is recorded as
a ``system.event_unpublishable`` event of its own (parent: that event), counted in
``quipu_relay_unpublishable_total``, and the relay goes on with the next. Consumers lose
nothing by it: they apply events from the log, and a later message heals the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
import structlog
from eventsourcing.persistence import PersistenceError
from nats.aio.client import Client as NATS
from nats.errors import BadSubjectError, MaxPayloadError
from nats.js.client import JetStreamContext
from nats.js.errors import APIError
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from bus.agent_messages import ensure_agent_messages_stream, publish_agent_messages
from bus.metrics import RELAY_LAG, RELAY_PUBLISHED
from bus.publishing import headers_for
from bus.runtime import NatsEndpoint, become_leader, connect_nats, run_until_stopped
from bus.streams import StreamSettings, ensure_event_stream, last_message_id
from bus.subjects import Subjects
from commands.log import head, read_after
from commands.store import EventStore, postgres_env
from commands.system_records import LoggedEvent, SystemRecords
from domain.envelope import EventEnvelope

log = structlog.get_logger(__name__)
PUBLISH_ACK_TIMEOUT = 10.0
_encoder = msgspec.json.Encoder()
RELAY_UNPUBLISHABLE = Counter(
    "quipu_relay_unpublishable_total", "Events the bus refused for good, recorded as system.event_unpublishable"
)
# JetStream's "message size exceeds maximum allowed": the stream's own size limit.
_TOO_LARGE_FOR_STREAM = 10054


class RecordFailed(OSError):
    """Recording an unpublishable event failed (Postgres away): retried like an outage."""


def _header_bytes(headers: dict[str, str]) -> int:
    """Size of the NATS header block; the server counts it against ``max_payload``."""
    return len(b"NATS/1.0\r\n\r\n") + sum(len(k.encode()) + len(v.encode()) + 4 for k, v in headers.items())


def _permanent(error: BaseException) -> str | None:
    """Why the bus will never take this one message, or None when a retry may succeed.

    Deliberately narrow: an error that may concern the whole stream (storage full, no
    responders, a broken chain) is retried, or one outage would mark every event.
    """
    if isinstance(error, MaxPayloadError):
        return "larger than the bus max_payload"
    if isinstance(error, BadSubjectError):
        return "its subject is not a valid NATS subject"
    if isinstance(error, APIError) and error.err_code == _TOO_LARGE_FOR_STREAM:
        return f"refused by JetStream: {error.description}"
    return None


class Relay:
    def __init__(
        self,
        database_url: str,
        nats_url: NatsEndpoint | str,
        subjects: Subjects,
        *,
        name: str | None = None,
        batch_size: int = 500,
        idle_wait: float = 1.0,
        streams: StreamSettings | None = None,
    ) -> None:
        self._database_url = database_url
        # The one role that brings existing streams to the configuration (see bus.streams).
        self._streams = streams or StreamSettings()
        self._nats_url = nats_url
        self._subjects = subjects
        # One relay position (and one leader) per subject scheme sharing this database.
        self._name = name or subjects.prefix
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._wakeup = asyncio.Event()
        self._records: SystemRecords | None = None
        self.published = 0
        self.unpublishable = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; survives Postgres and NATS outages by retrying."""
        try:
            await run_until_stopped(stop, self._run_as_leader, "relay_retrying", relay=self._name)
        finally:
            if self._records is not None:
                await asyncio.to_thread(self._records.close)

    async def _run_as_leader(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(
            self._database_url, autocommit=True, row_factory=dict_row, application_name="quipu-relay"
        ) as conn:
            if not await become_leader(conn, f"quipu-relay:{self._name}", stop):
                return
            log.info("relay_active", relay=self._name)
            # Position writes need not wait for the WAL flush: after a crash the relay
            # re-derives its position from the stream's last message (_resume_point).
            await conn.execute("SET synchronous_commit TO off")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS relay_position (name text PRIMARY KEY, notification_id bigint NOT NULL)"
            )
            nc = await connect_nats(self._nats_url)
            try:
                js = nc.jetstream(timeout=5)
                await ensure_event_stream(js, self._subjects, self._streams)
                await ensure_agent_messages_stream(js, self._subjects, self._streams)
                listener = asyncio.create_task(self._listen())
                try:
                    await self._pump(conn, nc, js, stop)
                finally:
                    listener.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await listener
            finally:
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _listen(self) -> None:
        """LISTEN for appends so the relay reacts at once; polling covers lost notifies."""
        async with await AsyncConnection.connect(self._database_url, autocommit=True) as conn:
            await conn.execute("LISTEN quipu_events")
            async for _ in conn.notifies():
                self._wakeup.set()

    async def _pump(self, conn: AsyncConnection[DictRow], nc: NATS, js: JetStreamContext, stop: asyncio.Event) -> None:
        position, expected_last = await self._resume_point(conn, js)
        while not stop.is_set():
            batch = await read_after(conn, position, self._batch_size)
            if batch:
                expected_last = await self._publish_all(conn, nc, js, batch, expected_last)
                # Copies of messages for their recipients' subjects, before the position moves on.
                await publish_agent_messages(js, self._subjects, batch, max_payload=nc.max_payload)
                position = batch[-1].notification_id
                await self._store_position(conn, position)
                self.published += len(batch)
                RELAY_PUBLISHED.inc(len(batch))
                RELAY_LAG.set(max(0.0, time.time() - batch[-1].occurred_at.timestamp()))
            else:
                RELAY_LAG.set(0.0)
            if len(batch) < self._batch_size:
                self._wakeup.clear()
                if await head(conn) > position:
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wait_any(stop), self._idle_wait)

    async def _publish_all(
        self,
        conn: AsyncConnection[DictRow],
        nc: NATS,
        js: JetStreamContext,
        batch: list[EventEnvelope],
        expected_last: str | None,
    ) -> str | None:
        """Publish ``batch``; an event refused for good is recorded and passed by, and the
        chain continues from the last message the stream holds. Returns that message's id."""
        start = 0
        while start < len(batch):
            refused, reason, size, expected_last = await self._publish(nc, js, batch[start:], expected_last)
            if refused is None:
                break
            event = batch[start + refused]
            await self._record_unpublishable(event, size, reason)
            # Recorded: a crash from here on must not try this event again.
            await self._store_position(conn, event.notification_id)
            start += refused + 1
        return expected_last

    async def _publish(
        self, nc: NATS, js: JetStreamContext, batch: list[EventEnvelope], expected_last: str | None
    ) -> tuple[int | None, str, int, str | None]:
        """Publish a run of events pipelined, each message chained to its predecessor.

        ``Nats-Expected-Last-Msg-Id`` makes JetStream refuse a message unless the
        previous one is the stream's last, so a message lost in flight (a reconnect
        replays the client's buffer) can never let a later one overtake it: the batch
        fails and is re-sent from the stored position, repeats dropped by dedup
        (which JetStream checks before the expectation).

        Stops at the first event the bus refuses for good and returns (its index in
        ``batch``, why, its size, the id of the last message published before it); the
        events after it were refused by the chain and go out in the next run. Any other
        failure raises, and the whole batch is retried.
        """
        futures: list[asyncio.Future[Any]] = []
        sizes: list[int] = []
        refused: tuple[int, str, int] | None = None
        last_ok = expected_last
        try:
            for index, envelope in enumerate(batch):
                headers = headers_for(envelope)
                if expected_last is not None:
                    headers["Nats-Expected-Last-Msg-Id"] = expected_last
                payload = _encoder.encode(envelope)
                size = len(payload) + _header_bytes(headers)
                if size > nc.max_payload:  # checked here: nats-py leaks a pending future on MaxPayloadError
                    refused = (index, f"{size} bytes exceed the bus max_payload of {nc.max_payload} bytes", size)
                    break
                try:
                    future = await js.publish_async(
                        self._subjects.event(envelope.tenant_id, envelope.kind), payload, headers=headers
                    )
                except (MaxPayloadError, BadSubjectError) as error:
                    refused = (index, _permanent(error) or repr(error), size)
                    break
                futures.append(future)
                sizes.append(size)
                expected_last = headers["Nats-Msg-Id"]
            results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), PUBLISH_ACK_TIMEOUT)
        finally:
            for future in futures:
                future.cancel()
        for index, result in enumerate(results):
            if isinstance(result, BaseException):
                reason = _permanent(result)
                if reason is None:
                    raise result
                return index, reason, sizes[index], last_ok
            last_ok = str(batch[index].event_id)
        if refused is not None:
            index, reason, size = refused
            return index, reason, size, last_ok
        return None, "", 0, last_ok

    async def _record_unpublishable(self, event: EventEnvelope, size: int, reason: str) -> None:
        if self._records is None:
            store = await asyncio.to_thread(EventStore, postgres_env(self._database_url, pool_size=1))
            self._records = SystemRecords(store)
        records = self._records
        logged = LoggedEvent(event.event_id, event.tenant_id, event.notification_id, event.kind)
        try:
            fresh = await asyncio.to_thread(records.record_unpublishable, logged, size=size, reason=reason)
        except PersistenceError as error:
            raise RecordFailed(f"recording unpublishable event {event.event_id} failed: {error}") from error
        if fresh:
            RELAY_UNPUBLISHABLE.inc()
            self.unpublishable += 1
        log.error(
            "relay_event_unpublishable",
            event_id=str(event.event_id),
            notification_id=event.notification_id,
            kind=event.kind,
            size=size,
            reason=reason,
            recorded=fresh,
        )

    async def _resume_point(self, conn: AsyncConnection[DictRow], js: JetStreamContext) -> tuple[int, str | None]:
        """Where to continue: the stored position, or further if the stream already holds
        later events (acked, but the relay died before recording its position)."""
        position = await self._position(conn)
        last_id = await last_message_id(js, self._subjects.events_stream)
        if last_id is not None:
            cur = await conn.execute("SELECT notification_id FROM event_dag WHERE event_id::text = %s", (last_id,))
            row = await cur.fetchone()
            if row is not None and row["notification_id"] > position:
                log.info("relay_fast_forward", stored=position, stream=row["notification_id"])
                position = int(row["notification_id"])
                await self._store_position(conn, position)
        return position, last_id

    async def _store_position(self, conn: AsyncConnection[DictRow], position: int) -> None:
        await conn.execute(
            "INSERT INTO relay_position (name, notification_id) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET notification_id = excluded.notification_id",
            (self._name, position),
        )

    async def _wait_any(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _position(self, conn: AsyncConnection[DictRow]) -> int:
        cur = await conn.execute("SELECT notification_id FROM relay_position WHERE name = %s", (self._name,))
        row = await cur.fetchone()
        return int(row["notification_id"]) if row else 0
