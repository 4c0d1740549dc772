"""An agent's inbox feed: its messages handed out live, most urgent first, each once.

The feed reads what the agent has not been handed yet from the ``messages`` read model
(critical before high before normal before low, oldest first within a priority), records
each delivery on the message's stream (``deliver``: the write side decides, so two feeds of
one agent never hand out the same message twice) and yields it. Then it waits: for a hint
from the agent's NATS subject (the relay's copies of ``message.sent``; only a wake-up, the
read model is what is sent) or, without the bus, for the next poll. A quiet spell yields
None (SSE sends a comment). Messages delivered but never acknowledged stay listable with
``unacknowledged_only``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from projections.messages import undelivered

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 0.5
BATCH = 100


class InboxSubscription(Protocol):
    @property
    def closed(self) -> bool: ...

    async def wait(self, seconds: float) -> bool:
        """True when something arrived within ``seconds``."""

    async def close(self) -> None: ...


class InboxHints(Protocol):
    """Wake-ups when a message for an agent was published (the bus)."""

    async def subscribe(self, tenant_id: str, agent_id: UUID) -> InboxSubscription | None:
        """None when the bus cannot be followed now (the feed polls)."""


class InboxFeed:
    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        tenant_id: str,
        agent_id: UUID,
        deliver: Callable[[UUID], Awaitable[bool]],
        hints: InboxHints | None,
        *,
        keepalive: float = KEEPALIVE_SECONDS,
        poll: float = POLL_SECONDS,
    ) -> None:
        self._pool = pool
        self._tenant_id = tenant_id
        self._agent_id = agent_id
        self._deliver = deliver
        self._hints = hints
        self._keepalive = keepalive
        self._poll = poll
        self._handed: set[UUID] = set()  # the read model may show a delivery late: never twice
        self._subscription: InboxSubscription | None = None

    async def messages(self) -> AsyncGenerator[dict[str, Any] | None, None]:
        clock = asyncio.get_running_loop().time
        try:
            if self._hints is not None:
                self._subscription = await self._hints.subscribe(self._tenant_id, self._agent_id)
            last_sent = clock()
            while True:
                sent = 0
                async for row in self._batch():
                    sent += 1
                    yield row
                if sent:
                    last_sent = clock()
                    continue  # more may be waiting: look again before sleeping
                if clock() - last_sent >= self._keepalive:
                    last_sent = clock()
                    yield None
                await self._wait(max(0.05, min(self._keepalive - (clock() - last_sent), self._keepalive)))
        finally:
            await self.close()

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.close()

    async def _batch(self) -> AsyncGenerator[dict[str, Any], None]:
        async with self._pool.connection() as conn:
            rows = await undelivered(conn, self._tenant_id, self._agent_id, BATCH)
        for row in rows:
            message_id = row["message_id"]
            if message_id in self._handed:
                continue
            self._handed.add(message_id)
            if await self._deliver(message_id):
                yield dict(row)

    async def _wait(self, seconds: float) -> None:
        subscription = self._subscription
        if subscription is None or subscription.closed:
            await asyncio.sleep(min(self._poll, seconds))
            return
        # A hint may come before the read model has the message: poll soon after either way.
        await subscription.wait(min(seconds, self._poll * 4))
