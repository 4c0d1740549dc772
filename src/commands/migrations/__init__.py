"""Versioned, idempotent migrations of the write side (docs/decisions/0009-write-side-migrations.md).

Each migration is a module ``mNNNN_<name>.py`` with ``NAME`` and ``statements(schema)``,
listed in ``MIGRATIONS`` in order. ``apply`` runs the pending ones in the caller's
transaction, under the DDL advisory lock every process takes before it touches the
schema, and records each in ``quipu_schema_migrations`` with a checksum of its SQL: all of
them commit or none, concurrent starters wait for the first and then find nothing to do.
Every statement is also idempotent on its own, so a database created before this table
existed is brought to version 1 without error.

Read models (``rm_*`` schemas) are not migrated: they are rebuilt from the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from psycopg import Connection, Cursor
from psycopg.rows import TupleRow, tuple_row
from psycopg.sql import SQL

from commands.migrations import m0001_initial, m0002_walk_rows, m0003_dense_ascending_indexes

TABLE = "quipu_schema_migrations"
DDL_LOCK = "quipu-ddl"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[str], list[str]]

    def checksum(self) -> str:
        """SHA-256 of the SQL (as written for ``public``): shows a migration edited after release."""
        return hashlib.sha256("\n;\n".join(self.statements("public")).encode()).hexdigest()


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, m0001_initial.NAME, m0001_initial.statements),
    Migration(2, m0002_walk_rows.NAME, m0002_walk_rows.statements),
    Migration(3, m0003_dense_ascending_indexes.NAME, m0003_dense_ascending_indexes.statements),
)


@dataclass(frozen=True)
class MigrationState:
    """One migration as this database knows it: applied when, and whether its SQL changed since."""

    version: int
    name: str
    applied_at: datetime | None
    changed: bool = False


def _sql(text: str) -> SQL:
    # Built from constants and the configured schema name, never from user input.
    return SQL(text)


def _applied(curs: Cursor[TupleRow], schema: str) -> dict[int, tuple[str, datetime]]:
    curs.execute(_sql(f"SELECT version, checksum, applied_at FROM {schema}.{TABLE}"))
    return {int(version): (str(checksum).strip(), at) for version, checksum, at in curs.fetchall()}


def apply(curs: Cursor[Any], schema: str = "public", migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Run the pending migrations in order in ``curs``'s transaction, which must hold the
    DDL lock (``lock``); returns the versions applied."""
    check_sequence(migrations)
    with curs.connection.cursor(row_factory=tuple_row) as c:
        c.execute(
            _sql(
                f"CREATE TABLE IF NOT EXISTS {schema}.{TABLE} ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum char(64) NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        done = _applied(c, schema)
        applied = []
        for migration in migrations:
            if migration.version in done:
                continue
            for statement in migration.statements(schema):
                c.execute(_sql(statement), prepare=False)
            c.execute(
                _sql(f"INSERT INTO {schema}.{TABLE} (version, name, checksum) VALUES (%s, %s, %s)"),
                (migration.version, migration.name, migration.checksum()),
            )
            applied.append(migration.version)
            log.info("schema_migrated", version=migration.version, name=migration.name)
    return applied


def lock(curs: Cursor[Any]) -> None:
    """The transaction-scoped DDL lock (released at commit or rollback)."""
    curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (DDL_LOCK,))


def migrate(conn: Connection[Any], schema: str = "public", migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Lock, apply what is pending, commit: what ``quipu migrate`` and every start-up run."""
    with conn.transaction(), conn.cursor() as curs:
        lock(curs)
        return apply(curs, schema, migrations)


def status(
    conn: Connection[Any], schema: str = "public", migrations: Sequence[Migration] = MIGRATIONS
) -> list[MigrationState]:
    """Every known migration, applied or pending, in order (read-only)."""
    with conn.cursor(row_factory=tuple_row) as c:
        c.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{TABLE}",))
        row = c.fetchone()
        done = _applied(c, schema) if row and row[0] else {}
    states = []
    for m in migrations:
        checksum, at = done.get(m.version, (None, None))
        states.append(MigrationState(m.version, m.name, at, changed=checksum not in (None, m.checksum())))
    return states


def check_sequence(migrations: Sequence[Migration]) -> None:
    """Versions are 1, 2, 3 ... in order, with no gap or repeat."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1..n in order, got {versions}")
