"""The composition root: the only module that knows how the parts fit together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from api.context import ApiContext
from bus.consumer import Projector
from bus.relay import Relay
from bus.runtime import RETRYABLE, connect_nats
from bus.subjects import Subjects
from commands.access import AccessService
from commands.executions import ExecutionService
from commands.store import EventStore, postgres_env
from commands.workflows import WorkflowService
from projections.applier import ensure_schema
from projections.registry import PROJECTIONS, projection
from quipu.config import Settings


def build_store(database_url: str, pool_size: int = 10) -> EventStore:
    """Connects, and creates the write-side tables on first use."""
    return EventStore(env=postgres_env(database_url, pool_size=pool_size))


@dataclass
class Wiring:
    database_url: str
    nats_url: str
    subjects: Subjects
    pool_size: int = 10
    max_body_bytes: int = 1 << 20
    rate_limit_per_minute: int = 6000
    agent_types: frozenset[str] | None = None  # the registry of agent types, when configured

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str, nats_url: str) -> Wiring:
        return cls(
            database_url,
            nats_url,
            Subjects(settings.subject_prefix),
            settings.pool_size,
            settings.max_body_bytes,
            settings.rate_limit_per_minute,
            settings.agent_types,
        )

    @contextlib.asynccontextmanager
    async def api_context(self) -> AsyncIterator[ApiContext]:
        store = await asyncio.to_thread(build_store, self.database_url, self.pool_size)
        pool = AsyncConnectionPool(
            self.database_url,
            connection_class=AsyncConnection[DictRow],
            min_size=1,
            max_size=self.pool_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
        )
        await pool.open(wait=True, timeout=30)
        async with pool.connection() as conn:
            # Read models exist before the first query, even if no projector ran yet.
            for name in sorted(PROJECTIONS):
                await ensure_schema(conn, projection(name))
        # Readiness reports NATS; the API still serves commands while NATS is down, and
        # connects lazily if NATS was not there at start.
        clients: list[NATS] = []
        with contextlib.suppress(*RETRYABLE):
            clients.append(await connect_nats(self.nats_url))

        async def nats_ready() -> bool:
            if not clients:
                with contextlib.suppress(*RETRYABLE):
                    clients.append(await asyncio.wait_for(connect_nats(self.nats_url), 3))
            return bool(clients) and clients[0].is_connected

        workflows = WorkflowService(store, agent_types=self.agent_types)
        try:
            yield ApiContext(
                store=store,
                workflows=workflows,
                executions=ExecutionService(store, workflows),
                access=AccessService(store),
                pool=pool,
                nats_ready=nats_ready,
                max_body_bytes=self.max_body_bytes,
                rate_limit_per_minute=self.rate_limit_per_minute,
            )
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()
            await pool.close()
            await asyncio.to_thread(store.close)

    def relay(self) -> Relay:
        return Relay(self.database_url, self.nats_url, self.subjects)

    def projectors(self, names: list[str] | None = None) -> list[Projector]:
        return [
            Projector(projection(n), self.database_url, self.nats_url, self.subjects)
            for n in (names or sorted(PROJECTIONS))
        ]
