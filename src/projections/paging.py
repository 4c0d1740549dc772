"""One page of a read-model table, with the total the filters match."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow


async def page(
    conn: AsyncConnection[DictRow],
    table: str,
    where: str,
    params: list[Any],
    *,
    sort: str,
    descending: bool,
    tie_breaker: str,
    limit: int,
    offset: int,
) -> tuple[list[DictRow], int]:
    """``sort`` and ``tie_breaker`` must be column names checked by the caller (they are
    spliced into SQL); the tie-breaker makes paging stable across equal sort values."""
    cur = await conn.execute(f"SELECT count(*) AS n FROM {table}" + where, params)
    total = await cur.fetchone()
    assert total is not None
    order = f" ORDER BY {sort} {'DESC' if descending else 'ASC'}, {tie_breaker}"
    cur = await conn.execute(
        f"SELECT * FROM {table}" + where + order + " LIMIT %s OFFSET %s",
        [*params, limit, offset],
    )
    return await cur.fetchall(), int(total["n"])
