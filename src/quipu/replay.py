"""``quipu replay EXECUTION``: an execution's events and telemetry, in log order, in the
terminal, read straight from Postgres (the same query the replay endpoint streams).

Lines go to stdout (``--json``: one envelope per line, as the endpoint's NDJSON); the
progress bar goes to stderr and is cleared around each line so the two never mix on a
terminal. An operator with the database URL sees every tenant, so there is no tenant check.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, TextIO
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from commands.replay_log import count_replay, replay, replay_range
from domain.envelope import EventEnvelope
from domain.errors import DomainError
from quipu.rebuild import ProgressBar

_BULKY = frozenset({"definition", "state", "execution_id", "node_id", "request_hash"})
REDRAW_SECONDS = 0.1


def describe(envelope: EventEnvelope, width: int = 100) -> str:
    """One readable line: stream position, time, kind, node, and the payload in short."""
    own = not envelope.kind.startswith("telemetry.")
    position = f"v{envelope.version}" if own else "  ·"
    node = envelope.payload.get("node_id") or ""
    detail = msgspec.json.encode({k: v for k, v in envelope.payload.items() if k not in _BULKY}).decode()
    if len(detail) > width:
        detail = detail[: width - 1] + "…"
    when = envelope.occurred_at.isoformat(timespec="milliseconds")
    return f"{position:>6}  {when}  {envelope.kind:<30} {node:<16} {detail if detail != '{}' else ''}".rstrip()


async def replay_execution(
    database_url: str,
    execution_id: UUID,
    *,
    start: str | None = None,
    end: str | None = None,
    pace: float = 0.0,
    as_json: bool = False,
    out: TextIO = sys.stdout,
    progress: ProgressBar | None = None,
) -> int:
    """Print the range; returns how many events were printed."""
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        r = await replay_range(conn, None, execution_id, start=start, end=end)
        total = await count_replay(conn, r)

        @contextlib.asynccontextmanager
        async def connect() -> AsyncIterator[AsyncConnection[DictRow]]:
            yield conn

        bar = _Bar(progress, total)
        done = 0
        async for envelope in replay(connect, r, pace=pace):
            bar.clear()
            out.write((msgspec.json.encode(envelope).decode() if as_json else describe(envelope)) + "\n")
            out.flush()
            done += 1
            bar.draw(done, force=pace > 0)
        bar.finish(done)
    return done


class _Bar:
    """The progress bar, redrawn at most every ``REDRAW_SECONDS`` unless paced."""

    def __init__(self, progress: ProgressBar | None, total: int) -> None:
        self.progress, self.total, self.last = progress, total, 0.0
        self.shown = False

    def clear(self) -> None:
        if self.progress is not None and self.shown and self.progress.stream.isatty():
            self.progress.stream.write("\r\x1b[K")
            self.shown = False

    def draw(self, done: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.progress is None or (not force and now - self.last < REDRAW_SECONDS and done < self.total):
            return
        self.last, self.shown = now, True
        self.progress(done, self.total)

    def finish(self, done: int) -> None:
        if self.progress is not None and (self.total == 0 or done < self.total):
            self.progress(self.total, self.total)  # an empty range, or events that arrived meanwhile


def run_replay(database_url: str, execution_id: UUID, **options: Any) -> None:
    """The command body: errors become a message and exit status 1."""
    try:
        count = asyncio.run(
            replay_execution(database_url, execution_id, progress=ProgressBar(f"replay {execution_id}"), **options)
        )
    except DomainError as error:
        sys.exit(f"quipu replay: {error}")
    sys.stderr.write(f"replayed {count} events\n")
