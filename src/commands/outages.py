"""Telling an outage of Postgres from a bug: the API answers the first with 503."""

from __future__ import annotations

import psycopg
import psycopg_pool
from eventsourcing.persistence import InterfaceError, OperationalError


def database_unavailable(exc: BaseException) -> bool:
    """A connection-level failure of Postgres (directly or wrapped by eventsourcing)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (psycopg.OperationalError, psycopg_pool.PoolTimeout, OperationalError, InterfaceError)):
            return True
        seen = seen.__cause__
    return False
