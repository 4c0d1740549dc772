"""What every long-running bus worker shares: reconnecting, retrying, leadership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import structlog
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from domain.backoff import exponential_backoff

# Connecting to NATS is defined once, in the client distribution that workers install.
from quipu_client.nats_connect import NatsEndpoint, connect_nats, endpoint

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "RETRYABLE",
    "NatsEndpoint",
    "become_leader",
    "connect_nats",
    "endpoint",
    "pause",
    "run_until_stopped",
]

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
    failures = 0
    while not stop.is_set():
        try:
            await attempt(stop)
            failures = 0
        except RETRYABLE as error:
            failures += 1
            backoff = exponential_backoff(failures, 0.2, MAX_BACKOFF_SECONDS)
            log.warning(event, error=str(error) or type(error).__name__, backoff=backoff, **context)
            await pause(stop, backoff)


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
