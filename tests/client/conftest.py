"""A running Quipu for the client's tests, served over real HTTP (the client speaks HTTP, SSE
and NDJSON to it exactly as it would to ``quipu up``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from api.app import create_app
from bus.subjects import Subjects
from quipu_client import AsyncQuipuClient
from tests.integration.conftest import Running, running_quipu
from tests.integration.servers import serving


@dataclass
class Served:
    quipu: Running
    url: str

    def client(self, key: str = "acme", **options: object) -> AsyncQuipuClient:
        return AsyncQuipuClient(self.url, self.quipu.keys[key], **options)  # type: ignore[arg-type]


@pytest.fixture
async def served(database_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Served]:
    async with running_quipu(database_url, nats_url, subjects) as quipu, serving(create_app(quipu.ctx)) as url:
        yield Served(quipu, url)
