"""The relay: the only writer to NATS. Tails the notification log and publishes in order.

Position is stored in Postgres only after JetStream acknowledged, so a crash re-sends at
most one batch and JetStream drops the repeats by ``Nats-Msg-Id``. Several relays may run:
a Postgres advisory lock makes exactly one of them active, the others wait to take over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
import structlog
from nats.js.client import JetStreamContext
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from bus.metrics import RELAY_LAG, RELAY_PUBLISHED
from bus.publishing import headers_for
from bus.runtime import become_leader, connect_nats, run_until_stopped
from bus.streams import ensure_event_stream, last_message_id
from bus.subjects import Subjects
from commands.log import head, read_after
from domain.envelope import EventEnvelope

log = structlog.get_logger(__name__)
PUBLISH_ACK_TIMEOUT = 10.0
_encoder = msgspec.json.Encoder()


class Relay:
    def __init__(
        self,
        database_url: str,
        nats_url: str,
        subjects: Subjects,
        *,
        name: str | None = None,
        batch_size: int = 500,
        idle_wait: float = 1.0,
    ) -> None:
        self._database_url = database_url
        self._nats_url = nats_url
        self._subjects = subjects
        # One relay position (and one leader) per subject scheme sharing this database.
        self._name = name or subjects.prefix
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._wakeup = asyncio.Event()
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; survives Postgres and NATS outages by retrying."""
        await run_until_stopped(stop, self._run_as_leader, "relay_retrying", relay=self._name)

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
                await ensure_event_stream(js, self._subjects)
                listener = asyncio.create_task(self._listen())
                try:
                    await self._pump(conn, js, stop)
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

    async def _pump(self, conn: AsyncConnection[DictRow], js: JetStreamContext, stop: asyncio.Event) -> None:
        position, expected_last = await self._resume_point(conn, js)
        while not stop.is_set():
            batch = await read_after(conn, position, self._batch_size)
            if batch:
                await self._publish(js, batch, expected_last)
                expected_last = str(batch[-1].event_id)
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

    async def _publish(self, js: JetStreamContext, batch: list[EventEnvelope], expected_last: str | None) -> None:
        """Publish a batch pipelined, each message chained to its predecessor.

        ``Nats-Expected-Last-Msg-Id`` makes JetStream refuse a message unless the
        previous one is the stream's last, so a message lost in flight (a reconnect
        replays the client's buffer) can never let a later one overtake it: the batch
        fails and is re-sent from the stored position, repeats dropped by dedup
        (which JetStream checks before the expectation).
        """
        futures: list[asyncio.Future[Any]] = []
        try:
            for envelope in batch:
                headers = headers_for(envelope)
                if expected_last is not None:
                    headers["Nats-Expected-Last-Msg-Id"] = expected_last
                expected_last = headers["Nats-Msg-Id"]
                futures.append(
                    await js.publish_async(
                        self._subjects.event(envelope.tenant_id, envelope.kind),
                        _encoder.encode(envelope),
                        headers=headers,
                    )
                )
            await asyncio.wait_for(asyncio.gather(*futures), PUBLISH_ACK_TIMEOUT)
        finally:
            for future in futures:
                future.cancel()

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
