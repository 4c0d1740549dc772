"""Shared by the hardening tests of the pipeline: a running Quipu with chosen limits, and
looks at the log, the read models and the metrics."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg

from bus.subjects import Subjects
from tests.integration.conftest import Running, running_quipu

SMALL = {"nodes": [{"id": "a"}]}


def quipu_with(
    database_url: str, nats_url: str, subjects: Subjects, **limits: Any
) -> contextlib.AbstractAsyncContextManager[Running]:
    """``running_quipu`` with the Wiring's own limits (the real 1 MiB body limit unless
    ``limits`` says otherwise) and no timers."""
    return running_quipu(database_url, nats_url, subjects, timers=False, **({"max_body_bytes": 1 << 20} | limits))


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
