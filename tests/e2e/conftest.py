"""End-to-end fixtures: a Postgres and a NATS of their own per test, as production has."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from quipu.embedded import EmbeddedNats, EmbeddedPostgres
from tests.nats_access import NatsForTests, nats_for_tests


@pytest.fixture
def infra(tmp_path: Path) -> Iterator[tuple[str, NatsForTests]]:
    """(database_url, nats) on free ports; fsync off: these tests kill processes, not machines.
    ``nats`` carries operator credentials, and ``nats.env()`` what a ``quipu`` process needs."""
    os.chmod(tmp_path, 0o755)
    pg = EmbeddedPostgres(tmp_path / "pg", extra_settings={"fsync": "off"})
    pg.start()
    nats_server = EmbeddedNats(tmp_path / "nats")
    nats_server.start()
    try:
        yield pg.create_database("quipu"), nats_for_tests(nats_server)
    finally:
        nats_server.stop()
        pg.stop(mode="immediate")
