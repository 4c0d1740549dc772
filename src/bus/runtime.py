"""What every long-running bus worker shares: reconnecting, retrying, leadership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
import structlog
from nats.aio.client import Client as NATS
from nats.aio.client import RawCredentials
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from psycopg import AsyncConnection
from psycopg.rows import DictRow

log = structlog.get_logger(__name__)

# Outages of Postgres or NATS: wait and start over, never crash the process.
RETRYABLE = (TimeoutError, psycopg.OperationalError, NatsError, JetStreamError, OSError)
MAX_BACKOFF_SECONDS = 5.0


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when ``stop`` is set."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_until_stopped(
    stop: asyncio.Event, attempt: Callable[[asyncio.Event], Awaitable[None]], event: str, **context: Any
) -> None:
    """Run ``attempt`` again after every outage, backing off up to a few seconds."""
    backoff = 0.2
    while not stop.is_set():
        try:
            await attempt(stop)
            backoff = 0.2
        except RETRYABLE as error:
            log.warning(event, error=str(error) or type(error).__name__, backoff=backoff, **context)
            await pause(stop, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


@dataclass(frozen=True)
class NatsEndpoint:
    """Where a NATS client connects and as whom.

    ``credentials`` is the text of a ``.creds`` file (user JWT and nkey seed) or None for a
    server without authentication; ``inbox_prefix`` keeps a client's replies under subjects
    its permissions allow (a worker may only subscribe below its tenant's prefix).
    """

    url: str
    credentials: str | None = field(default=None, repr=False)
    inbox_prefix: str | None = None

    def __str__(self) -> str:
        return self.url

    def with_credentials(self, credentials: str | None, inbox_prefix: str | None = None) -> NatsEndpoint:
        return replace(self, credentials=credentials, inbox_prefix=inbox_prefix)


def endpoint(target: NatsEndpoint | str) -> NatsEndpoint:
    return target if isinstance(target, NatsEndpoint) else NatsEndpoint(target)


async def connect_nats(target: NatsEndpoint | str, **options: Any) -> NATS:
    """A client that keeps reconnecting for as long as the process runs."""
    where = endpoint(target)
    settings: dict[str, Any] = {
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "connect_timeout": 2,
    }
    if where.credentials:
        settings["user_credentials"] = RawCredentials(where.credentials)
    if where.inbox_prefix:
        settings["inbox_prefix"] = where.inbox_prefix
    nc = NATS()
    await nc.connect(where.url, **{**settings, **options})
    return nc


async def become_leader(conn: AsyncConnection[DictRow], key: str, stop: asyncio.Event) -> bool:
    """Wait until this session holds the advisory lock ``key`` (False if stopped first).

    The lock lives as long as the connection, so a crashed leader's lock is released by
    Postgres and a standby takes over within a second.
    """
    while not stop.is_set():
        cur = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s)) AS ok", (key,))
        row = await cur.fetchone()
        if row and row["ok"]:
            return True
        await pause(stop, 1.0)
    return False
