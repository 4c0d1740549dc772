"""``quipu replay EXECUTION``: an execution's events and telemetry, in log order, in the
terminal, read straight from Postgres (the same query the replay endpoint streams).

Lines go to stdout (``--json``: one envelope per line, as the endpoint's NDJSON); progress goes
to stderr: a bar on a terminal (lines printed meanwhile appear above it), log lines otherwise
(see quipu.progress). An operator with the database URL sees every tenant, so there is no
tenant check.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any, TextIO
from uuid import UUID

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from commands.replay_log import count_replay, replay, replay_range
from domain.envelope import EventEnvelope
from domain.errors import DomainError
from quipu.progress import Report, progress_for

_BULKY = frozenset({"definition", "state", "execution_id", "node_id", "request_hash"})


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
    out: TextIO | None = None,
    progress: Report | None = None,
) -> int:
    """Print the range; returns how many events were printed."""
    async with await AsyncConnection.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        r = await replay_range(conn, None, execution_id, start=start, end=end)
        total = await count_replay(conn, r)

        @contextlib.asynccontextmanager
        async def connect() -> AsyncIterator[AsyncConnection[DictRow]]:
            yield conn

        # Looked up now, not at import: a terminal bar redirects stdout to print lines above itself.
        out = sys.stdout if out is None else out
        done = 0
        async for envelope in replay(connect, r, pace=pace):
            out.write((msgspec.json.encode(envelope).decode() if as_json else describe(envelope)) + "\n")
            out.flush()
            done += 1
            if progress is not None:
                progress(done, total)
        if progress is not None and (total == 0 or done < total):
            progress(total, total)  # an empty range, or events that arrived meanwhile
    return done


def run_replay(database_url: str, execution_id: UUID, **options: Any) -> None:
    """The command body: errors become a message and exit status 1."""
    try:
        with progress_for(f"replay {execution_id}", "replay_progress", execution_id=str(execution_id)) as progress:
            count = asyncio.run(replay_execution(database_url, execution_id, progress=progress, **options))
    except DomainError as error:
        sys.exit(f"quipu replay: {error}")
    sys.stderr.write(f"replayed {count} events\n")
