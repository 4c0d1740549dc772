"""``quipu projector rebuild NAME``: a bar on a terminal, progress log lines otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from commands.log import batches, head, read_kind
from domain.envelope import EventEnvelope
from projections.rebuild import Progress, rebuild
from projections.registry import projection
from projections.skips import SKIP_KIND
from quipu.progress import DEFAULT_INTERVAL, progress_for


async def rebuild_projection(database_url: str, name: str, progress: Progress | None = None) -> int:
    proj = projection(name)
    async with (
        await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn,
        await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as reader,
    ):

        def source(after: int, upto: int) -> AsyncIterator[list[EventEnvelope]]:
            return batches(reader, after, upto)

        return await rebuild(
            conn, proj, source, lambda: head(reader), progress=progress, skips=lambda: read_kind(reader, SKIP_KIND)
        )


def run_rebuild(database_url: str, name: str, *, interval: float = DEFAULT_INTERVAL) -> None:
    with progress_for(f"rebuild {name}", "rebuild_progress", interval=interval, projection=name) as progress:
        position = asyncio.run(rebuild_projection(database_url, name, progress))
    print(f"rebuilt {name} up to notification {position}")
