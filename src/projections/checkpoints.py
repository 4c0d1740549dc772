"""Read model of checkpoints: the state of an execution after each node and on demand.

A checkpoint is the ``execution.checkpoint_taken`` event itself (its id is the event id);
the row adds what a list needs without decoding the state: a per-execution sequence
number (1, 2, 3 ... in log order) and the size of the state in bytes. A deleted run's
checkpoints leave the read model (the events stay in the log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import msgspec
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.envelope import EventEnvelope
from domain.execution_events import CheckpointType, checkpoint_type
from projections.base import Handler, Projection

# The canonical encoding (sorted keys) is what the state hash covers, so the size is
# measured over the same bytes.
_canonical = msgspec.json.Encoder(order="sorted")


async def _taken(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    p = e.payload
    state = p.get("state", {})
    # The sequence comes from the rows already written: log order is the projection's
    # apply order, so a rebuild numbers the checkpoints exactly as the live run did.
    await cur.execute(
        "INSERT INTO checkpoints (tenant_id, execution_id, checkpoint_id, sequence, node_id, label,"
        " type, is_recoverable, state, state_hash, state_size_bytes, created_at)"
        " SELECT %s, %s, %s, coalesce(max(sequence), 0) + 1, %s, %s, %s, %s, %s, %s, %s, %s"
        " FROM checkpoints WHERE tenant_id = %s AND execution_id = %s",
        (
            e.tenant_id,
            e.stream_id,
            e.event_id,
            p.get("node_id"),
            p.get("label"),
            checkpoint_type(p.get("type"), p.get("node_id")),
            p.get("is_recoverable", True),
            Jsonb(state),
            p["state_hash"],
            len(_canonical.encode(state)),
            e.occurred_at,
            e.tenant_id,
            e.stream_id,
        ),
    )


async def _deleted(cur: AsyncCursor[DictRow], e: EventEnvelope) -> None:
    await cur.execute("DELETE FROM checkpoints WHERE tenant_id = %s AND execution_id = %s", (e.tenant_id, e.stream_id))


class CheckpointsProjection(Projection):
    name: ClassVar[str] = "checkpoints"
    ddl: ClassVar[list[str]] = [
        "CREATE TABLE IF NOT EXISTS checkpoints ("
        " tenant_id text NOT NULL, execution_id uuid NOT NULL, checkpoint_id uuid NOT NULL,"
        " sequence integer NOT NULL, node_id text, label text, state jsonb NOT NULL,"
        " state_hash text NOT NULL, state_size_bytes integer NOT NULL, created_at timestamptz NOT NULL,"
        " PRIMARY KEY (tenant_id, execution_id, sequence), UNIQUE (checkpoint_id))",
        # Added later: rows projected before read as their events do (checkpoint_type).
        "ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS type text",
        "ALTER TABLE checkpoints ADD COLUMN IF NOT EXISTS is_recoverable boolean NOT NULL DEFAULT true",
    ]
    handlers: ClassVar[dict[str, Handler]] = {"execution.checkpoint_taken": _taken, "execution.deleted": _deleted}


@dataclass(frozen=True)
class CheckpointRow:
    checkpoint_id: UUID
    execution_id: UUID
    sequence: int
    node_id: str | None
    label: str | None
    type: CheckpointType
    is_recoverable: bool
    state_hash: str
    state_size_bytes: int
    created_at: datetime
    state: dict[str, Any] | None  # None in lists: states can be large


_SUMMARY_FIELDS = [f for f in CheckpointRow.__dataclass_fields__ if f != "state"]


async def list_checkpoints(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    execution_id: UUID,
    *,
    descending: bool,
    limit: int,
    offset: int,
) -> tuple[list[CheckpointRow], int]:
    """One page of an execution's checkpoints in sequence order, without their states
    (they can be large; the shared paging query would select them)."""
    table = f"{CheckpointsProjection.schema()}.checkpoints"
    where = " WHERE tenant_id = %s AND execution_id = %s"
    cur = await conn.execute(f"SELECT count(*) AS n FROM {table}" + where, (tenant_id, execution_id))
    total = await cur.fetchone()
    assert total is not None
    cur = await conn.execute(
        f"SELECT {', '.join(_SUMMARY_FIELDS)} FROM {table}"
        + where
        + f" ORDER BY sequence {'DESC' if descending else 'ASC'} LIMIT %s OFFSET %s",
        (tenant_id, execution_id, limit, offset),
    )
    rows = [_row(r, state=None) for r in await cur.fetchall()]
    return rows, int(total["n"])


async def get_checkpoint(
    conn: AsyncConnection[DictRow], tenant_id: str, execution_id: UUID, checkpoint_id: UUID
) -> CheckpointRow | None:
    """The checkpoint with its state; None when unknown (or another tenant's)."""
    cur = await conn.execute(
        f"SELECT * FROM {CheckpointsProjection.schema()}.checkpoints"
        " WHERE tenant_id = %s AND execution_id = %s AND checkpoint_id = %s",
        (tenant_id, execution_id, checkpoint_id),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return _row(row, state=row["state"])


def _row(r: DictRow, *, state: dict[str, Any] | None) -> CheckpointRow:
    fields = {k: r[k] for k in _SUMMARY_FIELDS}
    return CheckpointRow(**{**fields, "type": checkpoint_type(r["type"], r["node_id"])}, state=state)
