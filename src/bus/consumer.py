"""Projectors as durable JetStream consumers feeding the exactly-once applier."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import psycopg
import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from bus.runtime import become_leader, connect_nats, run_until_stopped
from bus.streams import ensure_event_stream
from bus.subjects import Subjects
from commands.log import read_after
from domain.envelope import EventEnvelope
from projections.applier import apply_batch, ensure_schema, position, retry_dead_letters
from projections.base import Projection

log = structlog.get_logger(__name__)
_decode = msgspec.json.Decoder(EventEnvelope).decode


class Projector:
    """Runs one projection: fetch a batch, apply it in one transaction, then ack it."""

    def __init__(
        self,
        projection: Projection,
        database_url: str,
        nats_url: str,
        subjects: Subjects,
        *,
        batch_size: int = 256,
        dead_letter_interval: float = 1.0,
    ) -> None:
        self.projection = projection
        self._database_url = database_url
        self._nats_url = nats_url
        self._subjects = subjects
        self._batch_size = batch_size
        self._dead_letter_interval = dead_letter_interval

    @property
    def durable_name(self) -> str:
        return f"{self._subjects.events_stream}_proj_{self.projection.name}"

    async def run(self, stop: asyncio.Event) -> None:
        await run_until_stopped(stop, self._run_once, "projector_retrying", projection=self.projection.name)

    async def _run_once(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(
            self._database_url,
            autocommit=True,
            row_factory=dict_row,
            application_name=f"quipu-projector:{self.projection.name}",
        ) as conn:
            # One active instance per projection (fail-over, not work-sharing): two sharing
            # the durable consumer would split the stream and, skipping what is at or below
            # the other's position, lose events.
            if not await become_leader(conn, f"quipu-projector:{self._subjects.prefix}:{self.projection.name}", stop):
                return
            await ensure_schema(conn, self.projection)
            nc = await connect_nats(self._nats_url)
            try:
                js = nc.jetstream(timeout=5)
                await ensure_event_stream(js, self._subjects)
                # Catch up from the Postgres log first: covers a stream that no longer
                # holds old events and read-model commits lost in a database crash
                # after their messages were acked.
                start = applied_upto = await self._catch_up_from_log(conn)
                sub = await js.pull_subscribe(
                    self._subjects.all_events,
                    durable=self.durable_name,
                    stream=self._subjects.events_stream,
                    config=ConsumerConfig(
                        # One active puller (leadership), in order: acking the last
                        # message of a batch acknowledges the whole batch.
                        ack_policy=AckPolicy.ALL,
                        deliver_policy=DeliverPolicy.ALL,
                        max_ack_pending=self._batch_size * 4,
                        ack_wait=30,
                    ),
                )
                log.info("projector_started", projection=self.projection.name, position=start)
                loop = asyncio.get_running_loop()
                next_retry = loop.time()
                while not stop.is_set():
                    try:
                        msgs = await sub.fetch(self._batch_size, timeout=0.5)
                    except (NatsTimeout, TimeoutError):  # nats-py raises either on an empty fetch
                        msgs = []
                    if msgs:
                        # Messages at or below what is applied (after a catch-up from the
                        # log or a rebuild) are acked unread: a backlog of them must not
                        # delay what is new. apply_batch re-checks against the database.
                        fresh = [m for m in msgs if _notification_id(m) > applied_upto]
                        if fresh:
                            envelopes = sorted((_decode(m.data) for m in fresh), key=lambda e: e.notification_id)
                            await apply_batch(conn, self.projection, envelopes)
                            applied_upto = max(applied_upto, envelopes[-1].notification_id)
                        # Ack only after commit: a crash before this line means redelivery,
                        # which the tracking position turns into a no-op.
                        await msgs[-1].ack()
                    if loop.time() >= next_retry:
                        await retry_dead_letters(conn, self.projection, self._fetcher(conn))
                        next_retry = loop.time() + self._dead_letter_interval
            finally:
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _catch_up_from_log(self, conn: AsyncConnection[DictRow]) -> int:
        start, _ = await position(conn, self.projection)
        current = start
        while True:
            batch = await read_after(conn, current, 1000)
            if not batch:
                break
            await apply_batch(conn, self.projection, batch)
            current = batch[-1].notification_id
        if current > start:
            log.info("projector_caught_up_from_log", projection=self.projection.name, start=start, position=current)
        return current

    @staticmethod
    def _fetcher(conn: AsyncConnection[psycopg.rows.DictRow]):  # type: ignore[no-untyped-def]
        async def fetch(notification_id: int) -> EventEnvelope | None:
            batch = await read_after(conn, notification_id - 1, 1, upto=notification_id)
            return batch[0] if batch else None

        return fetch


def _notification_id(msg: Msg) -> int:
    header = (msg.headers or {}).get("Quipu-Notification-Id")
    return int(header) if header else _decode(msg.data).notification_id
