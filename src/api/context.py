"""What the API needs from the outside, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from commands.access import AccessService
from commands.executions import ExecutionService
from commands.store import EventStore
from commands.workflows import WorkflowService


@dataclass(frozen=True)
class LiveBus:
    """Where live updates (SSE, WebSocket) read events: the shared NATS client (None while
    NATS is unreachable), the JetStream stream holding every event, and the subjects that
    carry one tenant's execution and telemetry events."""

    client: Callable[[], Awaitable[NATS | None]]
    stream: str
    subjects: Callable[[str], list[str]]


@dataclass
class ApiContext:
    store: EventStore
    workflows: WorkflowService
    access: AccessService
    executions: ExecutionService
    pool: AsyncConnectionPool[AsyncConnection[DictRow]]  # async read connections: forensics and read models
    nats_ready: Callable[[], Awaitable[bool]]
    max_body_bytes: int = 1_048_576
    rate_limit_per_minute: int = 6000
    live: LiveBus | None = None  # None: live updates poll the Postgres log instead of following NATS
