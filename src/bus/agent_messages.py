"""Per-agent message subjects, fed only by the relay from the log.

For every ``message.sent`` event the relay has published, it also publishes the same
envelope once per recipient on ``<prefix>.agent.<tenant>.<agent_id>``, into a stream of its
own (so an agent that was away can read what it missed with a durable consumer on its
subject). ``Nats-Msg-Id`` is the event id and the agent, so the copies a relay retry sends
again are dropped by JetStream. Each copy carries ``Quipu-Priority``; the inbox feeds
(``projections.message_inbox``) hand messages out most urgent first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import DeliverPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import Error as JetStreamError

from bus.publishing import headers_for
from bus.stream_sync import sync_stream
from bus.streams import DUPLICATE_WINDOW_SECONDS, StreamSettings, process_stream_settings
from bus.subjects import Subjects
from domain.envelope import EventEnvelope

log = structlog.get_logger(__name__)
ACK_TIMEOUT = 10.0
PRIORITY_HEADER = "Quipu-Priority"
HEADER_ALLOWANCE = 1024  # the headers of one copy stay well below this
_encoder = msgspec.json.Encoder()


async def ensure_agent_messages_stream(js: Any, subjects: Subjects, settings: StreamSettings | None = None) -> None:
    """One file-backed stream for every agent's subject; the dedup window covers relay retries.
    With ``settings`` (the relay's), an existing stream is brought to their replica count."""
    config = StreamConfig(
        name=subjects.agent_messages_stream,
        subjects=[subjects.all_agent_messages],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=(settings or process_stream_settings()).replicas,
    )
    await sync_stream(js, config, update=settings is not None)


async def publish_agent_messages(js: Any, subjects: Subjects, batch: list[EventEnvelope], *, max_payload: int) -> int:
    """Publish each message of ``batch`` to its recipients' subjects and wait for JetStream's
    acks (a failure raises: the relay retries the batch, and dedup drops the repeats).
    A message too large for the bus is left to the log (the inbox feeds read it there), so
    it cannot hold the relay up. Returns how many copies went out."""
    futures: list[asyncio.Future[Any]] = []
    try:
        for envelope in batch:
            if envelope.kind != "message.sent":
                continue
            payload = _encoder.encode(envelope)
            if len(payload) + HEADER_ALLOWANCE > max_payload:
                continue
            for agent_id in envelope.payload.get("recipient_ids") or []:
                headers = headers_for(envelope)
                headers["Nats-Msg-Id"] = f"{envelope.event_id}:{agent_id}"
                headers[PRIORITY_HEADER] = str(envelope.payload.get("priority", "normal"))
                subject = subjects.agent_messages(envelope.tenant_id, str(agent_id))
                futures.append(await js.publish_async(subject, payload, headers=headers))
        if futures:
            await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT)
    finally:
        for future in futures:
            future.cancel()
    return len(futures)


class JetStreamInboxSubscription:
    """An ordered consumer of one agent's subject, from now on; a message is a wake-up."""

    def __init__(self, client: NATS) -> None:
        self._client = client
        self._arrived = asyncio.Event()
        self._subscription: Any = None

    async def start(self, stream: str, subject: str) -> bool:
        """False when NATS refuses (down, or no stream yet): the feed polls instead."""
        try:
            self._subscription = await self._client.jetstream().subscribe(
                subject, stream=stream, cb=self._on_message, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
            )
        except (TimeoutError, NatsError, JetStreamError, OSError) as error:
            log.warning("inbox_nats_unavailable", error=str(error) or type(error).__name__)
            return False
        return True

    async def _on_message(self, _msg: Msg) -> None:
        self._arrived.set()

    @property
    def closed(self) -> bool:
        return self._subscription is None or self._client.is_closed

    async def wait(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), seconds)
        arrived = self._arrived.is_set()
        self._arrived.clear()
        return arrived

    async def close(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await subscription.unsubscribe()


class JetStreamInboxHints:
    """Inbox wake-ups from the agent-messages stream over a shared client (``client``
    returns None while NATS is unreachable)."""

    def __init__(self, client: Callable[[], Awaitable[NATS | None]], subjects: Subjects) -> None:
        self._client = client
        self._subjects = subjects

    async def subscribe(self, tenant_id: str, agent_id: UUID) -> JetStreamInboxSubscription | None:
        client = await self._client()
        if client is None:
            return None
        subscription = JetStreamInboxSubscription(client)
        subject = self._subjects.agent_messages(tenant_id, str(agent_id))
        return subscription if await subscription.start(self._subjects.agent_messages_stream, subject) else None
