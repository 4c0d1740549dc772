"""The type of the API's pool of read connections (autocommit, rows as dicts), named here
so the API can hold the pool without importing the database driver."""

from __future__ import annotations

from typing import TypeAlias

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

ReadPool: TypeAlias = AsyncConnectionPool[AsyncConnection[DictRow]]
Conn: TypeAlias = AsyncConnection[DictRow]
