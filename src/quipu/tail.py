"""``quipu events tail``: print live events from JetStream as one JSON line each."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import structlog
from nats.js.api import DeliverPolicy

from bus.runtime import NatsEndpoint, connect_nats
from bus.streams import ensure_event_stream
from bus.subjects import Subjects

log = structlog.get_logger(__name__)


async def tail(
    nats: NatsEndpoint | str, subjects: Subjects, *, tenant: str | None, kind: str | None, limit: int = 0
) -> None:
    nc = await connect_nats(nats, allow_reconnect=False)
    js = nc.jetstream()
    await ensure_event_stream(js, subjects)
    if tenant and kind:
        subject = subjects.event(tenant, kind)
    elif tenant:
        subject = subjects.tenant_events(tenant)
    else:
        subject = subjects.all_events
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW)
    # Only events published from here on are printed (DeliverPolicy.NEW): saying so on stderr lets
    # a script start the tail, wait for this line, and then cause the events it wants to see.
    log.info("events_tail_subscribed", subject=subject)
    seen = 0
    try:
        async for msg in sub.messages:
            sys.stdout.write(msg.data.decode() + "\n")
            sys.stdout.flush()
            seen += 1
            if limit and seen >= limit:
                break
    except asyncio.CancelledError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
