"""Projectors as durable JetStream consumers feeding the exactly-once applier.

Only the log is trusted (docs/decisions/0006-log-trust.md). A message means "the log has reached notification
id N": the projector reads the log from its position up to the highest N the log
confirms (same event id, and hash) and applies what the log holds - one range query per
batch. A gap or a jump in positions is healed from the log, never skipped. A message the
log refutes (a position beyond the head, another event id or hash) is dropped, logged and
counted (``quipu_bus_messages_rejected_total``) and moves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

import psycopg
import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from bus.runtime import NatsEndpoint, become_leader, connect_nats, run_until_stopped
from bus.streams import ensure_event_stream
from bus.subjects import Subjects
from commands.log import batches, identities_at, read_after
from commands.log_trust import Claim, mismatch, readable_claims, reject
from domain.envelope import EventEnvelope
from projections.applier import apply_batch, ensure_schema, position, retry_dead_letters
from projections.base import Projection

log = structlog.get_logger(__name__)


class Projector:
    """Runs one projection: fetch a batch, apply it in one transaction, then ack it."""

    def __init__(
        self,
        projection: Projection,
        database_url: str,
        nats_url: NatsEndpoint | str,
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
                        applied_upto = await self._apply_hints(conn, msgs, applied_upto)
                        # Ack only after commit: a crash before this line means redelivery,
                        # which the tracking position turns into a no-op.
                        await msgs[-1].ack()
                    if loop.time() >= next_retry:
                        await retry_dead_letters(conn, self.projection, self._fetcher(conn))
                        next_retry = loop.time() + self._dead_letter_interval
            finally:
                with contextlib.suppress(Exception):
                    await nc.close()

    @property
    def _consumer(self) -> str:
        return f"projector:{self.projection.name}"

    async def _apply_hints(self, conn: AsyncConnection[DictRow], msgs: list[Msg], applied_upto: int) -> int:
        """Apply the log up to the highest position the messages claim and the log
        confirms; returns the new position."""
        fresh: list[tuple[Claim, str]] = []
        stale: list[tuple[Claim, str]] = []
        for claim, subject in readable_claims(self._consumer, msgs):
            (fresh if claim.notification_id > applied_upto else stale).append((claim, subject))
        if stale:
            # At or below the position (a redelivery, or a backlog after a catch-up from
            # the log): nothing to apply, but a forgery is still counted.
            await self._check(conn, stale, await identities_at(conn, [c.notification_id for c, _ in stale]))
        if not fresh:
            return applied_upto
        target = max(c.notification_id for c, _ in fresh)
        limit = max(self._batch_size * 2, 512)
        events = await read_after(conn, applied_upto, limit, upto=target)
        if len(events) < limit:  # the whole range in hand: check the claims against it
            top = await self._check(conn, fresh, {e.notification_id: (e.event_id, e.hash) for e in events})
            events = [e for e in events if e.notification_id <= top]
            if events:
                await apply_batch(conn, self.projection, events)
                return events[-1].notification_id
            return applied_upto
        # Far behind (or a claim far ahead): check the claims alone, then stream the log.
        top = await self._check(conn, fresh, await identities_at(conn, [c.notification_id for c, _ in fresh]))
        position = applied_upto
        async for batch in batches(conn, applied_upto, top, size=limit):
            await apply_batch(conn, self.projection, batch)
            position = batch[-1].notification_id
        return position

    async def _check(
        self, conn: AsyncConnection[DictRow], claims: list[tuple[Claim, str]], logged: dict[int, tuple[UUID, str]]
    ) -> int:
        """Reject what the log refutes; the highest confirmed position (0 if none)."""
        top = 0
        for claim, subject in claims:
            reason = mismatch(claim, logged.get(claim.notification_id))
            if reason is None:
                top = max(top, claim.notification_id)
            else:
                reject(self._consumer, reason, claim, subject)
        return top

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
