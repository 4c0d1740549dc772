"""The bus side of live feeds: an ordered JetStream consumer per subscriber, over the
tenant's execution and telemetry subjects, delivering only what is published from now on
(the log covers the past). Each message is a hint the feed checks against the log
(``commands.live_feed``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import anyio
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError

from commands.log_trust import Hint

log = structlog.get_logger(__name__)
INBOX_SIZE = 1000  # live messages waiting for a slow subscriber before NATS is held back
CORRELATION_HEADER = "Quipu-Correlation-Id"  # set on every published event (the versioned NATS scheme)
_SUBSCRIBE_FAILURES = (NatsError, JetStreamError, asyncio.TimeoutError, OSError)


class JetStreamHintSubscription:
    """One subscriber's consumer. Other executions' messages are dropped unread; a full
    inbox holds NATS back (flow control) until the subscriber catches up."""

    def __init__(self, client: NATS, correlation_id: UUID) -> None:
        self._client = client
        self._correlation = str(correlation_id)
        self._inbox: asyncio.Queue[Msg] = asyncio.Queue(INBOX_SIZE)
        self._subscription: Any = None

    async def start(self, stream: str, subjects: list[str]) -> bool:
        """False when NATS refuses (down, or no event stream yet): the feed polls instead."""
        try:
            self._subscription = await self._client.jetstream().subscribe(
                subjects[0],
                stream=stream,
                cb=self._on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
                config=ConsumerConfig(filter_subjects=subjects),
            )
        except _SUBSCRIBE_FAILURES as error:
            log.warning("live_nats_unavailable", error=str(error) or type(error).__name__)
            return False
        return True

    @property
    def closed(self) -> bool:
        return self._subscription is None or self._client.is_closed

    async def _on_message(self, msg: Msg) -> None:
        """Runs in the subscription's own task: waiting here holds NATS back."""
        if (msg.headers or {}).get(CORRELATION_HEADER) == self._correlation:
            await self._inbox.put(msg)

    async def next(self, seconds: float, most: int) -> list[Hint]:
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that meets a message, and the subscriber's task would then never end.
        getter = asyncio.ensure_future(self._inbox.get())
        try:
            await asyncio.wait({getter}, timeout=seconds)
        finally:
            if not getter.done():
                getter.cancel()  # a message not yet taken stays in the inbox
        if not getter.done() or getter.cancelled():
            return []
        msgs: list[Hint] = [getter.result()]
        while len(msgs) < most and not self._inbox.empty():  # what else arrived: one log query for all
            msgs.append(self._inbox.get_nowait())
        return msgs

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await subscription.unsubscribe()
                except Exception as error:  # the connection may be gone already; nothing to release then
                    log.debug("live_unsubscribe_failed", error=str(error) or type(error).__name__)


class JetStreamHints:
    """Live hints from the events stream over a shared client (``client`` returns None
    while NATS is unreachable); ``subjects`` names one tenant's execution and telemetry
    subjects."""

    def __init__(
        self, client: Callable[[], Awaitable[NATS | None]], stream: str, subjects: Callable[[str], list[str]]
    ) -> None:
        self._client = client
        self._stream = stream
        self._subjects = subjects

    async def subscribe(self, tenant_id: str, correlation_id: UUID) -> JetStreamHintSubscription | None:
        client = await self._client()
        if client is None:
            return None
        subscription = JetStreamHintSubscription(client, correlation_id)
        return subscription if await subscription.start(self._stream, self._subjects(tenant_id)) else None
