"""``quipu migrate``: bring the write side's tables to the code's version, or list where it is."""

from __future__ import annotations

import argparse
import sys

import psycopg

from commands.migrations import MIGRATIONS, MigrationState, migrate, status
from quipu.cli.common import database_url, settings


def render(states: list[MigrationState]) -> list[str]:
    """One line per migration: number, name, and when it was applied or that it is pending."""
    lines = []
    for s in states:
        if s.applied_at is None:
            where = "pending"
        else:
            where = f"applied {s.applied_at.isoformat(timespec='seconds')}"
            if s.changed:
                where += " (its SQL has changed since: a released migration must not be edited)"
        lines.append(f"{s.version:04d} {s.name:<24} {where}")
    pending = sum(s.applied_at is None for s in states)
    lines.append(f"{len(states) - pending} applied, {pending} pending")
    return lines


def cmd_migrate(args: argparse.Namespace) -> None:
    url = database_url(settings(args))
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            if args.status:
                print("\n".join(render(status(conn))))
                return
            applied = migrate(conn)
    except psycopg.OperationalError as error:
        sys.exit(f"quipu: cannot reach Postgres: {error}")
    latest = MIGRATIONS[-1].version
    if applied:
        print(f"applied {', '.join(f'{v:04d}' for v in applied)}; the schema is at {latest:04d}")
    else:
        print(f"nothing to do: the schema is at {latest:04d}")
