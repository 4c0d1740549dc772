"""The type of the API's pools of read connections (autocommit, rows as dicts), named here
so the API can hold the pool without importing the database driver."""

from __future__ import annotations

from typing import TypeAlias

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

ReadPool: TypeAlias = AsyncConnectionPool[AsyncConnection[DictRow]]
Conn: TypeAlias = AsyncConnection[DictRow]


def new_read_pool(url: str, size: int) -> ReadPool:
    """A pool of such connections to ``url`` (the caller opens and closes it)."""
    return AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[DictRow],
        min_size=1,
        max_size=size,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row},
    )
