"""``quipu projector rebuild NAME`` with a progress bar."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from commands.log import batches, head, read_kind
from domain.envelope import EventEnvelope
from projections.rebuild import rebuild
from projections.registry import projection
from projections.skips import SKIP_KIND
from quipu.wiring import Wiring


class ProgressBar:
    def __init__(self, label: str, stream=sys.stderr) -> None:  # type: ignore[no-untyped-def]
        self.label = label
        self.stream = stream
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        width = 30
        fraction = 1.0 if total <= 0 else min(done / total, 1.0)
        filled = int(width * fraction)
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction:6.1%} {done}/{total} ({rate:,.0f} ev/s)"
        )
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()


async def rebuild_projection(database_url: str, name: str, progress: ProgressBar | None = None) -> int:
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


def run_rebuild(wiring: Wiring, name: str) -> None:
    position = asyncio.run(rebuild_projection(wiring.database_url, name, ProgressBar(f"rebuild {name}")))
    print(f"rebuilt {name} up to notification {position}")
