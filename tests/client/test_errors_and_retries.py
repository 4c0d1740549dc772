"""Problems as typed exceptions, and retries, against a real Quipu: the rate limiter's 429
with Retry-After, and 503 answers."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from bus.subjects import Subjects
from quipu_client import (
    AsyncQuipuClient,
    NotFound,
    RateLimited,
    RetryPolicy,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from tests.client.conftest import Served
from tests.client.support import Recorder
from tests.integration.conftest import running_quipu
from tests.integration.servers import serving

BUDGET = 3  # requests per minute


@pytest.fixture
async def limited(database_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Served]:
    async with (
        running_quipu(database_url, nats_url, subjects, background=False, rate_limit_per_minute=BUDGET) as quipu,
        serving(create_app(quipu.ctx)) as url,
    ):
        yield Served(quipu, url)


def _sleeps(quipu: AsyncQuipuClient) -> list[float]:
    """Record the waits instead of waiting (the rate limiter's window is a minute long)."""
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    quipu.transport.sleep = sleep
    return waited


async def test_problems_become_typed_exceptions_with_their_field_errors(served: Served) -> None:
    async with served.client() as quipu:
        with pytest.raises(ValidationFailed) as invalid:
            await quipu.workflows.create({"name": "dup", "definition": {"nodes": [{"id": "a"}, {"id": "a"}]}})
        problem = invalid.value.problem
        assert problem.status == 422 and problem.instance == "/api/v1/workflows" and invalid.value.trace_id
        assert invalid.value.errors and all(e.field and e.message and e.code for e in invalid.value.errors)
        assert [e.code for e in invalid.value.errors] == ["duplicate_id"]
        assert "nodes" in invalid.value.errors[0].field

        with pytest.raises(NotFound) as missing:
            await quipu.workflows.get(uuid.uuid4())
        assert missing.value.response.headers["content-type"].startswith("application/problem+json")
    async with AsyncQuipuClient(served.url, "qk_not-a-key") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.workflows.list()


async def test_429_is_retried_after_retry_after_with_the_same_idempotency_key(limited: Served) -> None:
    recorder = Recorder()
    async with limited.client(http=recorder.client(), retry=RetryPolicy(attempts=3, max_delay=120)) as quipu:
        waited = _sleeps(quipu)
        for i in range(BUDGET):
            await quipu.trajectories.create({"name": f"t{i}"})
        recorder.requests.clear()
        with pytest.raises(RateLimited) as limited_out:
            await quipu.trajectories.create({"name": "one too many"})

    assert recorder.statuses[-3:] == [429, 429, 429]  # tried three times
    retry_after = float(limited_out.value.response.headers["Retry-After"])
    assert len(waited) == 2 and all(abs(w - retry_after) <= 1 for w in waited) and retry_after >= 1
    keys = {r.headers["Idempotency-Key"] for r in recorder.requests}
    assert len(recorder.requests) == 3 and len(keys) == 1  # one logical create, one key


async def test_503_is_retried_for_reads_and_not_for_unkeyed_writes(served: Served) -> None:
    # The API with a Postgres pool it cannot use: /ready answers 503, as when the database is down.
    dead_pool: AsyncConnectionPool = AsyncConnectionPool(served.quipu.wiring.database_url, open=False)
    ctx = dataclasses.replace(served.quipu.ctx, pool=dead_pool, worker_credentials=None)
    async with serving(create_app(ctx)) as url:
        recorder = Recorder()
        key = served.quipu.keys["acme"]
        async with AsyncQuipuClient(url, key, http=recorder.client(), retry=RetryPolicy(attempts=3)) as quipu:
            waited = _sleeps(quipu)
            with pytest.raises(Unavailable):
                await quipu.admin.ready()
            assert recorder.statuses == [503, 503, 503] and waited == [0.25, 0.5]  # backing off

            recorder.statuses.clear()
            with pytest.raises(Unavailable):  # a POST without Idempotency-Key could run twice: sent once
                await quipu.workers.credentials({"agent_types": ["http"]})
            assert recorder.statuses == [503]
