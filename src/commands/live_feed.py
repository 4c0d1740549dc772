"""Live updates of one execution: each event of its stream and of its glass-box telemetry,
in log (notification) order, rendered into the caller's messages.

No gaps and no duplicates, also across a reconnect: the feed subscribes to the bus
*before* it reads the Postgres log, sends the log after its resume point, then the live
events, skipping every notification id it already sent. A live execution event whose
version does not follow the replica's (a message lost in transit) sends the feed back to
the log, and so does every quiet keep-alive period. Without the bus (none configured,
down, or no event stream yet) the feed polls the log instead. A bus message is only a
hint: what is rendered is the envelope the log holds at the message's position, and a
message the log does not confirm is dropped and counted
(``quipu_bus_messages_rejected_total{consumer="live"}``).

Progress, current nodes and the state come from an execution aggregate replica kept per
subscriber: loaded once (event store, in a thread) as of the resume point and then
advanced by applying each event the way the aggregate itself does. So every message shows
the execution right after its own event, not as it is when the message is sent, and a
subscriber costs no aggregate load per event. The feed ends after the event that ended
the execution.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

import anyio.to_thread
from psycopg_pool import AsyncConnectionPool

from commands.live_log import LiveTarget, find_target, read_feed, start_point
from commands.log_trust import Hint, confirmed, readable_claims
from commands.store import EventStore
from domain.envelope import EventEnvelope, event_from_envelope
from domain.execution import TERMINAL, Execution

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0
BATCH = 500
M = TypeVar("M")
#: (event, the execution right after it; None for telemetry) -> a message, or None for none.
Render = Callable[[EventEnvelope, Execution | None], M | None]


class HintSubscription(Protocol):
    """Bus messages announcing one correlation's new events (a hint each, never a fact)."""

    @property
    def closed(self) -> bool:
        """True once its connection is gone: the feed polls the log instead."""

    async def next(self, seconds: float, most: int) -> list[Hint]:
        """What arrived: waits at most ``seconds`` for the first, then takes what else is
        there, up to ``most``; [] when nothing came."""

    async def close(self) -> None:
        """Release the subscription (idempotent)."""


class LiveHints(Protocol):
    """Where live hints come from (the bus)."""

    async def subscribe(self, tenant_id: str, correlation_id: UUID) -> HintSubscription | None:
        """Messages published from now on; None when the bus cannot be followed now."""


class ExecutionFeed(Generic[M]):
    """One subscriber's messages of one execution. ``messages`` yields None after
    ``keepalive`` quiet seconds (SSE sends a comment then). ``close`` is idempotent."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        store: EventStore,
        hints: LiveHints | None,
        target: LiveTarget,
        render: Render[M],
        *,
        from_start: bool = False,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._pool = pool
        self._store = store
        self._hints = hints
        self._target = target
        self._render = render
        self._from_start = from_start
        self._keepalive = keepalive
        self._subscription: HintSubscription | None = None
        self._replica: Execution | None = None
        self._position = 0
        self._quiet_until = 0  # telemetry at or before this notification id is not sent
        self._ended = False

    async def messages(self) -> AsyncGenerator[M | None, None]:
        try:
            if self._hints is not None:
                self._subscription = await self._hints.subscribe(self._target.tenant_id, self._target.correlation_id)
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
            await subscription.close()

    async def _start(self) -> None:
        target = self._target
        async with self._pool.connection() as conn:
            start = await start_point(conn, target, from_start=self._from_start)
        self._position, self._quiet_until = start.position, start.quiet_until
        if start.version > 0:
            self._replica = await anyio.to_thread.run_sync(
                lambda: self._store.load(Execution, target.execution_id, target.tenant_id, version=start.version)
            )

    # -- reading ------------------------------------------------------------------------------
    async def _read_log(self) -> tuple[list[EventEnvelope], bool]:
        """The next batch after the position, and whether more may follow at once."""
        async with self._pool.connection() as conn:
            envelopes = await read_feed(conn, self._target, self._position, self._quiet_until, BATCH)
        if envelopes:  # what is not this execution's is passed over for good
            self._position = max(self._position, envelopes[-1].notification_id)
        return [e for e in envelopes if self._belongs(e)], len(envelopes) == BATCH

    async def _next_live(self, seconds: float) -> list[EventEnvelope]:
        """What follows the position: waits at most ``seconds``, may be empty. A quiet spell
        ends with a look at the log, so nothing the bus failed to bring waits past a keep-alive."""
        if self._subscription is None or self._subscription.closed:
            await self.close()
            return await self._poll(seconds)
        hints = await self._subscription.next(seconds, BATCH)
        if not hints:
            return (await self._read_log())[0]
        out: list[EventEnvelope] = []
        version = self._next_version()
        for envelope in await self._confirmed(hints):
            if envelope.notification_id <= self._position or not self._belongs(envelope):
                continue  # sent already from the log, or not this execution's
            if not envelope.kind.startswith("telemetry."):
                if envelope.version != version:
                    return (await self._read_log())[0]  # a message went missing in transit: the log has it
                version += 1
            out.append(envelope)
        return out

    async def _confirmed(self, hints: list[Hint]) -> list[EventEnvelope]:
        """The log's envelopes for the hints the log confirms, in log order."""
        claims = readable_claims("live", hints)
        if not claims:
            return []
        async with self._pool.connection() as conn:
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
    def _advance_all(self, envelopes: list[EventEnvelope]) -> list[M]:
        messages: list[M] = []
        for envelope in envelopes:
            message, ends = self._advance(envelope)
            if message is not None:
                messages.append(message)
            if ends:
                self._ended = True
                break
        return messages

    def _advance(self, envelope: EventEnvelope) -> tuple[M | None, bool]:
        """The event's message, and whether it is the one that ended the execution."""
        self._position = max(self._position, envelope.notification_id)
        if envelope.kind.startswith("telemetry."):
            return self._render(envelope, None), False
        was_over = self._replica is not None and self._replica.status in TERMINAL
        replica = event_from_envelope(envelope).mutate(self._replica)
        assert isinstance(replica, Execution)
        self._replica = replica
        if was_over:
            return None, False
        return self._render(envelope, replica), replica.status in TERMINAL


class LiveFeeds:
    """Opens live feeds of executions over the API's read pool, following ``hints`` (None:
    polling the log)."""

    def __init__(self, pool: AsyncConnectionPool[Any], store: EventStore, hints: LiveHints | None) -> None:
        self._pool = pool
        self._store = store
        self._hints = hints

    async def find_target(self, tenant_id: str, execution_id: UUID, last_event_id: UUID | None) -> LiveTarget:
        """404 for a missing or another tenant's execution; 422 for a ``last_event_id`` not its."""
        async with self._pool.connection() as conn:
            return await find_target(conn, tenant_id, execution_id, last_event_id)

    def follow(
        self, target: LiveTarget, render: Render[M], *, from_start: bool = False, keepalive: float = KEEPALIVE_SECONDS
    ) -> ExecutionFeed[M]:
        return ExecutionFeed(
            self._pool, self._store, self._hints, target, render, from_start=from_start, keepalive=keepalive
        )
