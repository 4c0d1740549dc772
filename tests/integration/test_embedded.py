"""Integration tests for the embedded runtime: real PostgreSQL and real nats-server processes."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg
import pytest

from bus.runtime import connect_nats
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
    secret = quote(postgres.password, safe="")
    assert url == f"postgresql://postgres:{secret}@127.0.0.1:{postgres.port}/postgres"
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
    secret = quote(postgres.password, safe="")
    assert db_url == f"postgresql://postgres:{secret}@127.0.0.1:{postgres.port}/quipu_test"
    assert postgres.create_database("quipu_test") == db_url  # idempotent
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("quipu_test",)


def _refused(url: str) -> str:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(url, connect_timeout=5).close()
    return str(caught.value)


def _wait_open(url: str) -> None:
    """Until the reloaded trust rules let any password in (a reload is asynchronous)."""
    for _ in range(100):
        try:
            psycopg.connect(url, connect_timeout=5).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.05)
    raise AssertionError("trust rules never took effect")


def test_postgres_requires_its_generated_password(postgres: EmbeddedPostgres) -> None:
    url = postgres.start()
    password_file = postgres.data_dir / "password"
    info = password_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.geteuid()  # ours, not the service account's
    assert password_file.read_text().strip() == postgres.password
    assert len(postgres.password) >= 32
    assert not list(postgres.data_dir.glob(".initdb-pwfile*"))  # initdb's copy is gone

    hba = (postgres.pgdata / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules)

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    base = f"127.0.0.1:{postgres.port}/postgres"
    assert "password authentication failed" in _refused(f"postgresql://postgres:wrong@{base}")
    assert "no password" in _refused(f"postgresql://postgres@{base}")
    assert "password authentication failed" in _refused(f"postgresql://someone:{quote(postgres.password)}@{base}")

    # The password survives restarts and new handles on the same data dir.
    postgres.stop()
    again = EmbeddedPostgres(postgres.data_dir, port=postgres.port)
    assert again.start() == url
    assert again.password == postgres.password


def test_postgres_created_with_trust_gets_a_password_on_start(postgres: EmbeddedPostgres) -> None:
    """Data dirs made before passwords existed: initdb --auth=trust, no password file."""
    postgres.start()
    hba_path = postgres.pgdata / "pg_hba.conf"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('from the trust days')")
        conn.execute("ALTER ROLE postgres PASSWORD NULL")
        hba_path.write_text(hba_path.read_text().replace("scram-sha-256", "trust"))
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CHECKPOINT")
    base = f"127.0.0.1:{postgres.port}/postgres"
    _wait_open(f"postgresql://postgres:anything@{base}")  # the legacy state: anyone gets in
    postgres.stop()
    (postgres.data_dir / "password").unlink()
    old_password = postgres.password

    upgraded = EmbeddedPostgres(postgres.data_dir, port=postgres.port, extra_settings={"fsync": "off"})
    url = upgraded.start()
    assert upgraded.password != old_password
    assert stat.S_IMODE((upgraded.data_dir / "password").stat().st_mode) == 0o600
    assert "trust" not in "".join(
        line for line in hba_path.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    assert hba_path.stat().st_uid == postgres.pgdata.stat().st_uid  # still the server's file
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM kept").fetchone() == ("from the trust days",)
    assert "password authentication failed" in _refused(f"postgresql://postgres:wrong@{base}")
    assert "no password" in _refused(f"postgresql://postgres@{base}")

    # Upgrading also works on a trust cluster that is still running (reused, not restarted).
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER ROLE postgres PASSWORD NULL")
        hba_path.write_text(hba_path.read_text().replace("scram-sha-256", "trust"))
        conn.execute("SELECT pg_reload_conf()")
    _wait_open(f"postgresql://postgres:anything@{base}")
    assert EmbeddedPostgres(postgres.data_dir).start() == url
    assert "password authentication failed" in _refused(f"postgresql://postgres:wrong@{base}")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)


def test_postgres_rejects_reserved_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port"):
        EmbeddedPostgres(tmp_path, extra_settings={"port": "5432"})


async def test_nats_jetstream_survives_restart_on_same_port(nats_server: EmbeddedNats) -> None:
    url = nats_server.start()
    assert nats_server.port is not None
    assert nats_server.port not in SYSTEM_PORTS
    assert url == f"nats://127.0.0.1:{nats_server.port}"
    assert nats_server.running

    nc = await connect_nats(nats_server.endpoint, allow_reconnect=False)
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

    nc = await connect_nats(nats_server.endpoint, allow_reconnect=False)
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

    nc = await connect_nats(
        nats_server.endpoint,
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
