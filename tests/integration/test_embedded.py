"""Integration tests for the embedded runtime: real PostgreSQL and real nats-server processes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import nats
import psycopg
import pytest

from quipu.embedded import EmbeddedNats, EmbeddedPostgres, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Ports of the system services on this box / in CI, which the embedded ones must never use.
SYSTEM_PORTS = {5432, 4222}


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    # fsync off keeps initdb-and-restart cycles fast; every restart below is a clean
    # shutdown or happens after a checkpoint, so durability is not what is under test.
    server = EmbeddedPostgres(tmp_path / "pg", extra_settings={"fsync": "off"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    try:
        yield server
    finally:
        server.stop()


def test_free_port_is_bindable_and_not_a_system_port() -> None:
    port = free_port()
    assert 0 < port < 65536
    assert port not in SYSTEM_PORTS


def test_postgres_extensions_and_persistence(postgres: EmbeddedPostgres) -> None:
    url = postgres.start()
    assert postgres.port is not None
    assert postgres.port not in SYSTEM_PORTS
    assert url == f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    assert postgres.url == url
    assert postgres.running

    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        distance = conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector").fetchone()
        assert distance == (2.0,)
        # Non-ASCII letters must be word characters for trigram search (UTF-8 LC_CTYPE).
        similarity = conn.execute("SELECT similarity('wörterbuch', 'wörterbücher')").fetchone()
        assert similarity is not None
        assert similarity[0] > 0.4
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes VALUES (1, 'survives restarts')")

    # A second handle on the same data dir reuses the running server instead of starting one.
    assert EmbeddedPostgres(postgres.data_dir).start() == url

    postgres.stop()
    assert not postgres.running
    postgres.stop()  # stopping a stopped server is a no-op

    # Restart on the same data dir: same port, data still there.
    assert postgres.start() == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT body FROM notes WHERE id = 1").fetchone() == ("survives restarts",)


def test_postgres_restarts_after_kill(postgres: EmbeddedPostgres) -> None:
    url = postgres.start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (42)")
        conn.execute("CHECKPOINT")  # fsync=off: make the row independent of WAL replay

    postgres.kill()
    assert not postgres.running
    # The crash leaves postmaster.pid behind; start() must cope with it.
    assert (postgres.pgdata / "postmaster.pid").exists()

    assert postgres.start() == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM t").fetchone() == (42,)


def test_postgres_create_database(postgres: EmbeddedPostgres) -> None:
    postgres.start()
    db_url = postgres.create_database("quipu_test")
    assert db_url == f"postgresql://postgres@127.0.0.1:{postgres.port}/quipu_test"
    assert postgres.create_database("quipu_test") == db_url  # idempotent
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("quipu_test",)


def test_postgres_rejects_reserved_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port"):
        EmbeddedPostgres(tmp_path, extra_settings={"port": "5432"})


async def test_nats_jetstream_survives_restart_on_same_port(nats_server: EmbeddedNats) -> None:
    url = nats_server.start()
    assert nats_server.port is not None
    assert nats_server.port not in SYSTEM_PORTS
    assert url == f"nats://127.0.0.1:{nats_server.port}"
    assert nats_server.running

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="EVENTS", subjects=["events.>"])
        ack = await js.publish("events.created", b"hello")
        assert ack.seq == 1
    finally:
        await nc.close()

    nats_server.stop()
    assert not nats_server.running
    assert nats_server.start() == url  # same port

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        msg = await js.get_msg("EVENTS", 1)
        assert msg.data == b"hello"
        info = await js.stream_info("EVENTS")
        assert info.state.messages == 1
    finally:
        await nc.close()

    assert (nats_server.data_dir / "jetstream").is_dir()
    assert "Server is ready" in nats_server.log_path.read_text()


async def test_nats_client_reconnects_after_kill(nats_server: EmbeddedNats) -> None:
    url = nats_server.start()
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await nats.connect(
        url,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.1,
        connect_timeout=2,
        reconnected_cb=on_reconnect,
    )
    try:
        js = nc.jetstream()
        await js.add_stream(name="FAULTS", subjects=["faults.>"])
        await js.publish("faults.before", b"1")

        nats_server.kill()
        assert not nats_server.running
        assert nats_server.start() == url

        # The client was never closed: it must find the restarted server on the same port.
        await asyncio.wait_for(reconnected.wait(), timeout=10)
        assert nc.is_connected
        ack = await js.publish("faults.after", b"2")
        assert ack.seq == 2
        assert (await js.stream_info("FAULTS")).state.messages == 2
    finally:
        await nc.close()


def test_nats_stop_is_idempotent(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.stop()  # never started
    with server:
        assert server.running
    assert not server.running
    server.stop()
