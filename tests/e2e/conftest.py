"""End-to-end fixtures: a Postgres and a NATS of their own per test, as production has."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from quipu.embedded import EmbeddedNats, EmbeddedPostgres


@pytest.fixture
def infra(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(database_url, nats_url) on free ports; fsync off: these tests kill processes, not machines."""
    os.chmod(tmp_path, 0o755)
    pg = EmbeddedPostgres(tmp_path / "pg", extra_settings={"fsync": "off"})
    pg.start()
    nats_server = EmbeddedNats(tmp_path / "nats")
    nats_url = nats_server.start()
    try:
        yield pg.create_database("quipu"), nats_url
    finally:
        nats_server.stop()
        pg.stop(mode="immediate")
