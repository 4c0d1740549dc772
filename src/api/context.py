"""What the API needs from the outside, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from commands.access import AccessService
from commands.executions import ExecutionService
from commands.store import EventStore
from commands.workflows import WorkflowService


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
