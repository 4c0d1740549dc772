"""Shared by the hardening tests of the pipeline: a running Quipu with chosen limits, and
looks at the log, the read models and the metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg

from api.app import create_app
from bus.subjects import Subjects
from commands.access import issue_bootstrap_key
from quipu.wiring import Wiring
from tests.integration.conftest import Running

SMALL = {"nodes": [{"id": "a"}]}


@contextlib.asynccontextmanager
async def quipu_with(database_url: str, nats_url: str, subjects: Subjects, **limits: Any) -> AsyncIterator[Running]:
    """Like ``running_quipu``, but with the Wiring's own limits (the real 1 MiB body limit
    unless ``limits`` says otherwise) and everything running in the background."""
    wiring = Wiring(database_url, nats_url, subjects, pool_size=4, rate_limit_per_minute=1_000_000, **limits)
    stop = asyncio.Event()
    async with wiring.api_context() as ctx:
        keys = {
            tenant: await asyncio.to_thread(issue_bootstrap_key, ctx.store, tenant, ["read", "write", "admin"], "test")
            for tenant in ("acme", "beta")
        }
        keys["acme-reader"] = await asyncio.to_thread(issue_bootstrap_key, ctx.store, "acme", ["read"], "reader")
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(wiring.relay().run(stop))]
        tasks.extend(asyncio.create_task(p.run(stop)) for p in wiring.projectors())
        async with contextlib.AsyncExitStack() as resources:
            parts = await resources.enter_async_context(wiring.orchestration(timers=False))
            tasks.extend(asyncio.create_task(part(stop)) for part in parts)
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


def query(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, params or None).fetchall()


async def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return await asyncio.to_thread(query, database_url, sql, *params)


async def log_head(database_url: str) -> int:
    return int((await rows(database_url, "SELECT coalesce(max(notification_id), 0) FROM event_dag"))[0][0])


async def positions(database_url: str) -> dict[str, int]:
    """Every projection's tracking position."""
    schemas = await rows(
        database_url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rm\\_%%' AND nspname NOT LIKE '%%\\_\\_%%'"
    )
    out: dict[str, int] = {}
    for (schema,) in schemas:
        out[schema] = int((await rows(database_url, f"SELECT notification_id FROM {schema}.tracking"))[0][0])
    return out


async def workflows_total(q: Running, tenant: str) -> int:
    r = await q.client.get("/api/v1/workflows?limit=1", headers=q.auth(tenant))
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


async def metric(q: Running, name: str, **labels: str) -> float:
    """The sum of a Prometheus series' samples whose labels include ``labels``."""
    text = (await q.client.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total
