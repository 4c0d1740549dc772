"""Versioned write-side migrations (commands/migrations, docs/decisions/0009-write-side-migrations.md):
a database created by the start-up code before migrations existed upgrades cleanly and ends
identical to a fresh one, a second run changes nothing, a failing migration leaves nothing,
concurrent starters apply each migration once, and ``quipu migrate`` reports all of it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from commands.migrations import MIGRATIONS, Migration, migrate, status
from quipu.cli import main
from quipu.wiring import build_store

LEGACY = Path(__file__).parent / "data" / "legacy_write_schema.sql"
LATEST = MIGRATIONS[-1].version


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def _schema(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """What the write side consists of, as the catalog describes it."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
        "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
        "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
        "functions": "SELECT proname, pg_get_functiondef(oid) FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
        "types": "SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typtype = 'c'"
        " AND typrelid NOT IN (SELECT oid FROM pg_class WHERE relkind <> 'c') ORDER BY 1",
        "migrations": "SELECT version, name, checksum FROM quipu_schema_migrations ORDER BY 1",
    }
    with _connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}  # type: ignore[arg-type]


def _second_database(url: str) -> str:
    name = url.rsplit("/", 1)[1] + "_b"
    with _connect(url) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return url.rsplit("/", 1)[0] + "/" + name


def test_a_database_from_before_migrations_upgrades_to_the_same_schema_as_a_fresh_one(database_url: str) -> None:
    legacy = database_url
    with _connect(legacy) as conn:
        conn.execute(LEGACY.read_text())  # type: ignore[arg-type]
        conn.execute(
            "INSERT INTO quipu_events (originator_id, originator_version, topic, state)"
            " VALUES (gen_random_uuid(), 1, 'workflow.created', '{}')"
        )
        assert conn.execute("SELECT to_regclass('quipu_schema_migrations')").fetchone() == (None,)
        assert [s.applied_at for s in status(conn)] == [None] * LATEST
        assert migrate(conn) == list(range(1, LATEST + 1))
        assert migrate(conn) == []  # twice is a no-op
        assert conn.execute("SELECT count(*) FROM quipu_events").fetchone() == (1,)
        with pytest.raises(psycopg.Error, match="immutable"):  # the guards are still in place
            conn.execute("DELETE FROM quipu_events")
    fresh = _second_database(database_url)
    try:
        with _connect(fresh) as conn:
            assert migrate(conn) == list(range(1, LATEST + 1))
        assert _schema(legacy) == _schema(fresh)
    finally:
        with _connect(database_url) as conn:
            conn.execute(f"DROP DATABASE {fresh.rsplit('/', 1)[1]} WITH (FORCE)")  # type: ignore[arg-type]


def test_the_store_migrates_at_start_and_works(database_url: str) -> None:
    """Every role builds the store at start-up: that is where the migrations run."""
    build_store(database_url, 1).close()
    with _connect(database_url) as conn:
        states = status(conn)
    assert [(s.version, s.applied_at is not None, s.changed) for s in states] == [
        (m.version, True, False) for m in MIGRATIONS
    ]
    build_store(database_url, 1).close()  # and again: nothing to do


def _table(name: str) -> Migration:
    return Migration(2, name, lambda s: [f"CREATE TABLE IF NOT EXISTS {s}.{name} (id int)"])


def test_migrations_apply_in_order_all_or_nothing(database_url: str) -> None:
    broken = Migration(2, "broken", lambda s: [f"CREATE TABLE {s}.half_done (id int)", "SELECT no_such_function()"])
    with _connect(database_url) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            migrate(conn, migrations=[*MIGRATIONS[:1], broken])
        # Nothing of either migration was kept: not the tables, not the record.
        assert conn.execute("SELECT to_regclass('quipu_events'), to_regclass('half_done')").fetchone() == (None, None)
        assert migrate(conn, migrations=[*MIGRATIONS[:1], _table("extra")]) == [1, 2]
        assert conn.execute("SELECT to_regclass('extra') IS NOT NULL").fetchone() == (True,)
        assert migrate(conn, migrations=[*MIGRATIONS[:1], _table("extra")]) == []
        with pytest.raises(ValueError, match=r"1\.\.n"):
            migrate(conn, migrations=[_table("gap")])
        edited = Migration(2, "extra", lambda s: [f"CREATE TABLE IF NOT EXISTS {s}.extra (id bigint)"])
        assert [s.changed for s in status(conn, migrations=[*MIGRATIONS[:1], edited])] == [False, True]


def test_concurrent_starters_apply_each_migration_once(database_url: str) -> None:
    results: list[list[int]] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        with _connect(database_url) as conn:
            barrier.wait()
            results.append(migrate(conn))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[], [], [], list(range(1, LATEST + 1))]


def test_quipu_migrate_and_its_status(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["migrate", "--status", "--database-url", database_url])
    out = capsys.readouterr().out
    assert "0001 initial" in out and "pending" in out and out.rstrip().endswith(f"0 applied, {LATEST} pending")
    main(["migrate", "--database-url", database_url])
    assert capsys.readouterr().out.strip() == f"applied {', '.join(f'{v:04d}' for v in range(1, LATEST + 1))};" + (
        f" the schema is at {LATEST:04d}"
    )
    main(["migrate", "--database-url", database_url])
    assert capsys.readouterr().out.strip() == f"nothing to do: the schema is at {LATEST:04d}"
    main(["migrate", "--status", "--database-url", database_url])
    out = capsys.readouterr().out
    assert "0001 initial" in out and "applied 20" in out and out.rstrip().endswith(f"{LATEST} applied, 0 pending")
