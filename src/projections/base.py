"""What a projection is: its tables (in a schema of its own) and its event handlers.

Each read model lives in the Postgres schema ``rm_<name>`` with a one-row ``tracking``
table. Handlers use unqualified table names and run with ``search_path`` set to that
schema, which lets a rebuild write into a fresh schema and swap it in by renaming.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from psycopg import AsyncCursor
from psycopg.rows import DictRow

from domain.envelope import EventEnvelope

Handler = Callable[[AsyncCursor[DictRow], EventEnvelope], Awaitable[None]]


class Projection:
    """Subclasses set ``name``, ``ddl`` and register handlers per kind."""

    name: ClassVar[str] = ""
    ddl: ClassVar[list[str]] = []
    handlers: ClassVar[dict[str, Handler]] = {}

    @classmethod
    def schema(cls) -> str:
        return f"rm_{cls.name}"

    @classmethod
    def kinds(cls) -> set[str]:
        return set(cls.handlers)

    async def prepare(self, cur: AsyncCursor[DictRow], envelopes: Sequence[EventEnvelope]) -> None:
        """Called with the events of a batch before they are applied one by one, in the batch's
        transaction: a projection may do costly work for all of them at once (the memory search
        embeds their texts in one call). It must not write; handlers stay the only writers."""

    async def apply(self, cur: AsyncCursor[DictRow], envelope: EventEnvelope) -> None:
        handler = self.handlers.get(envelope.kind)
        if handler is not None:
            await handler(cur, envelope)


TRACKING_DDL = [
    "CREATE TABLE IF NOT EXISTS tracking ("
    " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
    " notification_id bigint NOT NULL DEFAULT 0,"
    " applied bigint NOT NULL DEFAULT 0,"
    " updated_at timestamptz NOT NULL DEFAULT now())",
    "INSERT INTO tracking (one) VALUES (true) ON CONFLICT DO NOTHING",
]

OPS_DDL = [
    # Operational state, not history: rows here are updated and deleted freely.
    "CREATE TABLE IF NOT EXISTS projection_dead_letters ("
    " projection text NOT NULL,"
    " notification_id bigint NOT NULL,"
    " event_id uuid NOT NULL,"
    " kind text NOT NULL,"
    " error text NOT NULL,"
    " attempts integer NOT NULL DEFAULT 1,"
    " first_failed_at timestamptz NOT NULL DEFAULT now(),"
    " next_retry_at timestamptz NOT NULL,"
    " PRIMARY KEY (projection, notification_id))",
]
