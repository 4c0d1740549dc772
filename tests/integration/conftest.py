"""A running Quipu (API in-process over ASGI, relay and projectors as tasks) per test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.context import ApiContext
from bus.subjects import Subjects
from commands.access import issue_bootstrap_key
from quipu.wiring import Wiring
from tests.nats_access import authority_of


@dataclass
class Running:
    wiring: Wiring
    ctx: ApiContext
    client: httpx.AsyncClient
    keys: dict[str, str]
    stop: asyncio.Event

    def auth(self, tenant: str = "acme") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}

    async def wait_for(self, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_quipu(
    database_url: str,
    nats_url: str,
    subjects: Subjects,
    *,
    background: bool = True,
    rate_limit_per_minute: int = 100_000,
    timers: bool = True,
    **wiring_options: Any,
) -> AsyncIterator[Running]:
    """``wiring_options`` override the Wiring's settings (limits, credential lifetimes)."""
    options: dict[str, Any] = {
        "pool_size": 4,
        "max_body_bytes": 256 * 1024,
        "rate_limit_per_minute": rate_limit_per_minute,
        "nats_authority": authority_of(nats_url),  # each role connects as a NATS user of its own
    }
    wiring = Wiring(database_url, nats_url, subjects, **(options | wiring_options))
    stop = asyncio.Event()
    async with wiring.api_context() as ctx:
        keys = {
            tenant: await asyncio.to_thread(issue_bootstrap_key, ctx.store, tenant, ["read", "write", "admin"], "test")
            for tenant in ("acme", "beta")
        }
        keys["acme-reader"] = await asyncio.to_thread(issue_bootstrap_key, ctx.store, "acme", ["read"], "reader")
        tasks: list[asyncio.Task[Any]] = []
        resources = contextlib.AsyncExitStack()
        if background:
            tasks.append(asyncio.create_task(wiring.relay().run(stop)))
            tasks.extend(asyncio.create_task(p.run(stop)) for p in wiring.projectors())
            parts = await resources.enter_async_context(wiring.orchestration(timers=timers))
            tasks.extend(asyncio.create_task(part(stop)) for part in parts)
            tasks.append(asyncio.create_task(wiring.report_responder(ctx.executions, ctx.summarization).run(stop)))
        app = create_app(ctx)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quipu", timeout=60) as client:
            try:
                yield Running(wiring, ctx, client, keys, stop)
            finally:
                stop.set()
                for t in tasks:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(t, 10)
                await resources.aclose()


@pytest.fixture
async def quipu(database_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Running]:
    async with running_quipu(database_url, nats_url, subjects) as running:
        yield running
