"""Live updates of one execution (seed 000 section 3.3): what SSE and WebSocket subscribers see.

One message per event of the execution's stream and of its glass-box telemetry, in log
(notification) order, each carrying the event's id: ``progress``, ``glass_box``,
``hitp_required`` (an approval node was scheduled), ``error`` (a node attempt failed) and
finally ``completed``, after which the feed ends. Checkpoints give no message; the state
travels in ``hitp_required`` and ``completed``. Never two messages for one event (an
approval's scheduling gives ``hitp_required``, not also ``progress``), so a client that
resumes after an event id cannot have received only part of what that event gave.

No gaps and no duplicates, also across a reconnect: the feed subscribes to NATS *before*
it reads the Postgres log, sends the log after its resume point, then the live messages,
skipping every notification id it already sent. A live execution event whose version
does not follow the replica's (a message lost in transit) sends the feed back to the log,
and so does every quiet keep-alive period. Without NATS (down, or no event stream yet) the
feed polls the log instead. A NATS message is only a hint (invariant 8): what is sent is
the envelope the log holds at the message's position, and a message the log does not
confirm is dropped and counted (``quipu_bus_messages_rejected_total{consumer="live"}``).

Progress, current nodes and the state come from an execution aggregate replica kept per
subscriber: loaded once (event store, in a thread) as of the resume point and then
advanced by applying each event the way the aggregate itself does. So every message shows
the execution right after its own event, not as it is when the message is sent, and a
subscriber costs no aggregate load per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio
import anyio.to_thread
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from api.context import ApiContext
from api.live_messages import LiveMessage, execution_message, glass_box
from commands.log import envelope_from_row
from commands.log_trust import confirmed, readable_claims
from commands.schema import EVENTS_TABLE
from domain.envelope import EventEnvelope, event_from_envelope
from domain.errors import FieldProblem, NotFound, ValidationFailed
from domain.execution import TERMINAL, Execution

log = structlog.get_logger(__name__)
KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0
BATCH = 500
INBOX_SIZE = 1000  # live messages waiting for a slow subscriber before NATS is held back
CORRELATION_HEADER = "Quipu-Correlation-Id"  # set on every published event (the versioned NATS scheme)
_SUBSCRIBE_FAILURES = (NatsError, JetStreamError, asyncio.TimeoutError, OSError)
_READ = (
    "SELECT d.kind, d.depth, d.hash, d.notification_id, e.state"
    f" FROM event_dag d JOIN {EVENTS_TABLE} e ON e.notification_id = d.notification_id"
    " WHERE d.tenant_id = %(tenant)s AND d.correlation_id = %(correlation)s AND d.notification_id > %(after)s"
    " AND (d.stream_id = %(execution)s OR (d.kind LIKE 'telemetry.%%' AND d.notification_id > %(quiet)s))"
    " ORDER BY d.notification_id LIMIT %(limit)s"
)
Conn = AsyncConnection[DictRow]


@dataclass(frozen=True)
class LiveTarget:
    """A checked subscription: the tenant's execution, and where a reconnect resumes."""

    tenant_id: str
    execution_id: UUID
    correlation_id: UUID
    resume_after: int | None = None  # notification id of the last event the subscriber has


async def find_target(conn: Conn, tenant_id: str, execution_id: UUID, last_event_id: UUID | None) -> LiveTarget:
    """404 for a missing or another tenant's execution; 422 for a ``last_event_id`` that is
    not one of its events (checked before a stream starts, so the answer is a problem)."""
    cur = await conn.execute(
        f"SELECT d.correlation_id FROM {EVENTS_TABLE} e JOIN event_dag d ON d.notification_id = e.notification_id"
        " WHERE e.originator_id = %s AND e.originator_version = 1 AND d.tenant_id = %s"
        " AND d.kind = 'execution.started'",
        (execution_id, tenant_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"execution {execution_id} not found")
    target = LiveTarget(tenant_id, execution_id, row["correlation_id"])
    if last_event_id is None:
        return target
    cur = await conn.execute(
        "SELECT notification_id FROM event_dag WHERE event_id = %s AND tenant_id = %s AND correlation_id = %s"
        " AND (stream_id = %s OR kind LIKE 'telemetry.%%')",
        (last_event_id, tenant_id, target.correlation_id, execution_id),
    )
    row = await cur.fetchone()
    if row is None:
        problem = f"event {last_event_id} is not an event of execution {execution_id}"
        raise ValidationFailed([FieldProblem("last_event_id", problem, "unknown_event")])
    return LiveTarget(tenant_id, execution_id, target.correlation_id, row["notification_id"])


class ExecutionFeed:
    """One subscriber's messages of one execution. ``messages`` yields None after
    ``keepalive`` quiet seconds (SSE sends a comment then). ``close`` is idempotent."""

    def __init__(
        self, ctx: ApiContext, target: LiveTarget, *, from_start: bool = False, keepalive: float = KEEPALIVE_SECONDS
    ) -> None:
        self._ctx = ctx
        self._target = target
        self._from_start = from_start
        self._keepalive = keepalive
        self._subscription: Any = None
        self._client: NATS | None = None
        self._inbox: asyncio.Queue[Msg] = asyncio.Queue(INBOX_SIZE)
        self._replica: Execution | None = None
        self._position = 0
        self._quiet_until = 0  # telemetry at or before this notification id is not sent
        self._ended = False

    async def messages(self) -> AsyncGenerator[LiveMessage | None, None]:
        try:
            self._subscription = await self._subscribe()
            await self._start()
            full = True
            while full and not self._ended:  # the log after the resume point
                batch, full = await self._read_log()
                for message in self._advance_all(batch):
                    yield message
            if self._replica is not None and self._replica.status in TERMINAL:
                return  # it ended at or before the resume point: nothing more will come
            clock = asyncio.get_running_loop().time
            last_sent = clock()
            while not self._ended:  # live; quiet means nothing *for this subscriber*, however busy the tenant
                sent = self._advance_all(await self._next_live(max(0.05, last_sent + self._keepalive - clock())))
                for message in sent:
                    yield message
                if sent or clock() - last_sent >= self._keepalive:
                    if not sent:
                        yield None
                    last_sent = clock()
        finally:
            await self.close()

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await subscription.unsubscribe()
                except Exception as error:  # the connection may be gone already; nothing to release then
                    log.debug("live_unsubscribe_failed", error=str(error) or type(error).__name__)

    # -- where to start ---------------------------------------------------------------------
    async def _subscribe(self) -> Any:
        """An ordered JetStream consumer of the tenant's execution and telemetry subjects,
        delivering only what is published from now on (the log covers the past)."""
        bus = self._ctx.live
        client = await bus.client() if bus is not None else None
        if bus is None or client is None:
            return None
        self._client = client
        filters = bus.subjects(self._target.tenant_id)
        try:
            return await client.jetstream().subscribe(
                filters[0],
                stream=bus.stream,
                cb=self._on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
                config=ConsumerConfig(filter_subjects=filters),
            )
        except _SUBSCRIBE_FAILURES as error:
            log.warning("live_nats_unavailable", error=str(error) or type(error).__name__)
            return None

    async def _start(self) -> None:
        """Set the replica and the log position to the resume point. Without one (and
        without ``from_start``) it is just before the latest execution event that gives a
        message, so a new subscriber at once sees where the execution stands (or how it
        ended); the telemetry recorded until now is not sent again."""
        target = self._target
        async with self._ctx.pool.connection() as conn:
            if target.resume_after is not None:
                cur = await conn.execute(
                    f"SELECT coalesce(max(originator_version), 0) AS v FROM {EVENTS_TABLE}"
                    " WHERE originator_id = %s AND notification_id <= %s",
                    (target.execution_id, target.resume_after),
                )
                row = await cur.fetchone()
                version, self._position = (row["v"] if row else 0), target.resume_after
            elif self._from_start:
                version, self._position = 0, 0
            else:
                cur = await conn.execute(  # one statement: one snapshot for both answers
                    f"SELECT originator_version AS v, notification_id AS n, (SELECT max(notification_id)"
                    " FROM event_dag WHERE tenant_id = %s AND correlation_id = %s) AS head"
                    f" FROM {EVENTS_TABLE} WHERE originator_id = %s AND topic <> 'execution.checkpoint_taken'"
                    " ORDER BY originator_version DESC LIMIT 1",
                    (target.tenant_id, target.correlation_id, target.execution_id),
                )
                row = await cur.fetchone()
                assert row is not None  # find_target saw its first event
                version, self._position, self._quiet_until = row["v"] - 1, row["n"] - 1, row["head"]
        if version > 0:
            self._replica = await anyio.to_thread.run_sync(
                lambda: self._ctx.store.load(Execution, target.execution_id, target.tenant_id, version=version)
            )

    # -- reading ------------------------------------------------------------------------------
    async def _read_log(self) -> tuple[list[EventEnvelope], bool]:
        """The next batch after the position, and whether more may follow at once."""
        target = self._target
        async with self._ctx.pool.connection() as conn:
            cur = await conn.execute(
                _READ,
                {
                    "tenant": target.tenant_id,
                    "correlation": target.correlation_id,
                    "after": self._position,
                    "execution": target.execution_id,
                    "quiet": self._quiet_until,
                    "limit": BATCH,
                },
                prepare=True,
            )
            rows = await cur.fetchall()
        envelopes = [envelope_from_row(r) for r in rows]
        if rows:  # what is not this execution's is passed over for good
            self._position = max(self._position, rows[-1]["notification_id"])
        return [e for e in envelopes if self._belongs(e)], len(rows) == BATCH

    async def _on_message(self, msg: Msg) -> None:
        """Runs in the subscription's own task: other executions of the tenant are dropped
        unread, and waiting here for a slow subscriber holds NATS back (flow control)."""
        if (msg.headers or {}).get(CORRELATION_HEADER) == str(self._target.correlation_id):
            await self._inbox.put(msg)

    async def _next_live(self, seconds: float) -> list[EventEnvelope]:
        """What follows the position: waits at most ``seconds``, may be empty. A quiet spell
        ends with a look at the log, so nothing NATS failed to bring waits past a keep-alive."""
        if self._subscription is None or self._client is None or self._client.is_closed:
            await self.close()
            return await self._poll(seconds)
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that meets a message, and the subscriber's task would then never end.
        getter = asyncio.ensure_future(self._inbox.get())
        try:
            await asyncio.wait({getter}, timeout=seconds)
        finally:
            if not getter.done():
                getter.cancel()  # a message not yet taken stays in the inbox
        if not getter.done() or getter.cancelled():
            return (await self._read_log())[0]
        msgs = [getter.result()]
        while len(msgs) < BATCH and not self._inbox.empty():  # what else arrived: one log query for all
            msgs.append(self._inbox.get_nowait())
        out: list[EventEnvelope] = []
        version = self._next_version()
        for envelope in await self._confirmed(msgs):
            if envelope.notification_id <= self._position or not self._belongs(envelope):
                continue  # sent already from the log, or not this execution's
            if not envelope.kind.startswith("telemetry."):
                if envelope.version != version:
                    return (await self._read_log())[0]  # a message went missing in transit: the log has it
                version += 1
            out.append(envelope)
        return out

    async def _confirmed(self, msgs: list[Msg]) -> list[EventEnvelope]:
        """The log's envelopes for the messages the log confirms, in log order."""
        claims = readable_claims("live", msgs)
        if not claims:
            return []
        async with self._ctx.pool.connection() as conn:
            return await confirmed(conn, "live", claims)

    async def _poll(self, seconds: float) -> list[EventEnvelope]:
        batch, _ = await self._read_log()
        if not batch:
            await asyncio.sleep(min(POLL_SECONDS, seconds))
        return batch

    def _belongs(self, envelope: EventEnvelope) -> bool:
        target = self._target
        if envelope.tenant_id != target.tenant_id:
            return False
        if envelope.kind.startswith("telemetry."):
            fresh = envelope.notification_id > self._quiet_until
            return fresh and envelope.payload.get("execution_id") == str(target.execution_id)
        return envelope.stream_id == target.execution_id

    def _next_version(self) -> int:
        return (self._replica.version if self._replica is not None else 0) + 1

    # -- turning events into messages ---------------------------------------------------------
    def _advance_all(self, envelopes: list[EventEnvelope]) -> list[LiveMessage]:
        messages: list[LiveMessage] = []
        for envelope in envelopes:
            message = self._advance(envelope)
            if message is not None:
                messages.append(message)
                if message.type == "completed":
                    self._ended = True
                    break
        return messages

    def _advance(self, envelope: EventEnvelope) -> LiveMessage | None:
        self._position = max(self._position, envelope.notification_id)
        if envelope.kind.startswith("telemetry."):
            return glass_box(envelope)
        was_over = self._replica is not None and self._replica.status in TERMINAL
        replica = event_from_envelope(envelope).mutate(self._replica)
        assert isinstance(replica, Execution)
        self._replica = replica
        return None if was_over else execution_message(envelope, replica)
