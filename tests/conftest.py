"""Real Postgres and real NATS for every integration test.

By default the embedded pair (started once per session on free ports); set
QUIPU_TEST_DATABASE_URL / QUIPU_TEST_NATS_URL to use others (e.g. the system Postgres 15).
Each test gets a fresh database and its own subject prefix, so tests never see each
other's events.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest

from bus.runtime import connect_nats
from bus.subjects import Subjects
from tests.nats_access import nats_for_tests


@pytest.fixture(scope="session")
def infra_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="quipu-test-") as d:
        path = Path(d)
        os.chmod(path, 0o755)
        yield path


def _docker_requested() -> bool:
    return os.environ.get("QUIPU_TEST_DOCKER", "") not in ("", "0")


@pytest.fixture(scope="session")
def postgres_admin_url(infra_dir: Path) -> Iterator[str]:
    url = os.environ.get("QUIPU_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _docker_requested():  # testcontainers, where a Docker engine exists
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("pgvector/pgvector:pg17", driver=None) as container:
            yield container.get_connection_url()
        return
    from quipu.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres(
        infra_dir / "pg", extra_settings={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    )
    yield pg.start()
    pg.stop(mode="immediate")


@pytest.fixture(scope="session")
def embedded_nats(infra_dir: Path) -> Iterator[object | None]:
    if os.environ.get("QUIPU_TEST_NATS_URL"):
        yield None
        return
    if _docker_requested():
        from testcontainers.nats import NatsContainer

        with NatsContainer("nats:2.10", jetstream=True) as container:
            os.environ["QUIPU_TEST_NATS_URL"] = container.nats_uri()
            yield None
        return
    from quipu.embedded import EmbeddedNats

    nats = EmbeddedNats(infra_dir / "nats")
    nats.start()
    yield nats
    nats.stop()


@pytest.fixture(scope="session")
def nats_url(embedded_nats: object | None) -> str:
    """The URL, as a ``NatsForTests`` endpoint carrying operator credentials when the embedded
    NATS (authenticated, as in production) is used; a plain URL for QUIPU_TEST_NATS_URL."""
    if embedded_nats is None:
        return os.environ["QUIPU_TEST_NATS_URL"]
    return nats_for_tests(embedded_nats)  # type: ignore[return-value]


def _with_db(url: str, name: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path="/" + name))


@pytest.fixture
def database_url(postgres_admin_url: str) -> Iterator[str]:
    name = "quipu_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    yield _with_db(postgres_admin_url, name)
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture
def subjects() -> Subjects:
    return Subjects(prefix="t" + uuid.uuid4().hex[:10])


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[object]:
    nc = await connect_nats(nats_url, allow_reconnect=False)
    yield nc
    await nc.close()
