"""Provenance of a memory item: what produced an artifact or a note, read off the event DAG.

The walk starts at the item's first event (its creation) and goes up the parent links
breadth-first, so whatever the creation named as a cause - the running node's event, a
turn, a tool call, the latest events of a note's sources, the item it superseded - and
their own causes back to the command that started the run are found, nearest first. The
walk is bounded (``max_depth``, ``limit``); ``truncated`` says when it stopped early.

It reads the write side (no projector lag) and, like every forensic query, sees only the
caller's tenant: another tenant's item is indistinguishable from a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

from commands.forensics import Conn, Related, get_event, walk
from commands.schema import EVENTS_TABLE
from domain.envelope import EventEnvelope
from domain.errors import NotFound
from domain.upcasting import decode_state

EntityType = Literal["artifact", "note"]
NODE_KINDS = frozenset({"execution.node_started", "execution.node_scheduled"})
# Where a note's creation names its sources, and what each source's first event is.
SOURCE_FIELDS: dict[str, tuple[str, str]] = {
    "source_artifact_ids": ("artifact", "artifact.created"),
    "source_note_ids": ("note", "note.created"),
    "source_trajectory_ids": ("trajectory", "trajectory.created"),
}
# Classified under their own heading, so they are not repeated as commands.
_NOT_COMMANDS = ("turn.", "telemetry.", "artifact.", "note.")


class SupersededItem(msgspec.Struct, kw_only=True):
    id: UUID
    event_id: UUID | None  # its latest event when replaced: a parent of the creation


class ItemOrigin(msgspec.Struct, kw_only=True):
    entity_type: str
    id: UUID
    created_event_id: UUID
    actor: str
    created_at: datetime
    correlation_id: UUID
    execution_id: UUID | None
    node_id: str | None
    supersedes: SupersededItem | None
    superseded_by: UUID | None
    deleted: bool
    last_event_id: UUID


class Found(msgspec.Struct, kw_only=True):
    """An event the walk reached: its id, hops from the creation, who recorded it and when."""

    event_id: UUID
    distance: int
    actor: str
    occurred_at: datetime


class TurnFound(Found, kw_only=True):
    turn_id: UUID
    kind: str
    role: str | None
    sequence: int | None
    scope_id: UUID | None
    trajectory_id: UUID | None
    execution_id: UUID | None
    node_id: str | None


class ToolCallFound(Found, kw_only=True):
    record_id: UUID
    tool: str
    execution_id: UUID | None
    node_id: str | None
    error: str | None


class LlmCallFound(Found, kw_only=True):
    record_id: UUID
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    execution_id: UUID | None
    node_id: str | None


class NodeFound(Found, kw_only=True):
    execution_id: UUID
    node_id: str
    attempt: int
    kind: str
    status: str | None = None  # the node's status now, filled in by the caller if it can


class ApprovalFound(Found, kw_only=True):
    approval_id: UUID
    execution_id: UUID
    node_id: str
    approved: bool
    answered_by: str
    feedback: str
    state_hash: str


class SourceFound(msgspec.Struct, kw_only=True):
    entity_type: str
    id: UUID
    created_event_id: UUID | None  # None when the source stream is not (or no longer) there
    linked_event_id: UUID | None  # the source's event the creation named as a parent
    distance: int | None  # of its creation event in this walk, when reached
    actor: str | None
    created_at: datetime | None


Reason = Literal["root", "stream_start", "workflow_run"]


class CommandFound(Found, kw_only=True):
    """A root cause: an event without parents, the first event of a stream on the way, or
    the workflow event an execution's start names (the definition that ran)."""

    kind: str
    stream_id: UUID
    reason: Reason


class AncestorEvent(msgspec.Struct):
    distance: int
    event: EventEnvelope


class ItemProvenance(msgspec.Struct, kw_only=True):
    item: ItemOrigin
    turns: list[TurnFound]
    tool_calls: list[ToolCallFound]
    llm_calls: list[LlmCallFound]
    node: NodeFound | None
    approvals: list[ApprovalFound]
    sources: list[SourceFound]
    command: list[CommandFound]
    events: list[AncestorEvent]  # the creation (distance 0), then its ancestors nearest first
    max_depth: int
    limit: int
    truncated: bool


def _uuid(value: Any) -> UUID | None:
    return UUID(value) if isinstance(value, str) else None


async def _item(conn: Conn, tenant_id: str, entity_type: EntityType, item_id: UUID) -> ItemOrigin:
    """The item's stream read through the events table's key; only the first, last and
    ``superseded`` events are decoded. 404 unless the stream is this tenant's item."""
    cur = await conn.execute(
        "SELECT originator_version AS version, topic AS kind,"
        " CASE WHEN originator_version = 1 OR topic = %(superseded)s"
        "  OR originator_version = max(originator_version) OVER () THEN state END AS state"
        f" FROM {EVENTS_TABLE} WHERE originator_id = %(id)s ORDER BY originator_version",
        {"id": item_id, "superseded": f"{entity_type}.superseded"},
    )
    rows = await cur.fetchall()
    if not rows or rows[0]["version"] != 1 or rows[0]["kind"] != f"{entity_type}.created":
        raise NotFound(f"{entity_type} {item_id} not found")
    first = decode_state(rows[0]["kind"], bytes(rows[0]["state"]))
    if first["tenant_id"] != tenant_id:
        raise NotFound(f"{entity_type} {item_id} not found")
    last = decode_state(rows[-1]["kind"], bytes(rows[-1]["state"]))
    superseded = next((r for r in rows if r["kind"] == f"{entity_type}.superseded"), None)
    superseded_by = (
        decode_state(superseded["kind"], bytes(superseded["state"]))["superseded_by"] if superseded else None
    )
    replaced = _uuid(first.get("supersedes"))
    return ItemOrigin(
        entity_type=entity_type,
        id=item_id,
        created_event_id=UUID(first["event_id"]),
        actor=first["actor"],
        created_at=msgspec.convert(first["timestamp"], datetime),
        correlation_id=UUID(first["correlation_id"]),
        execution_id=_uuid(first.get("execution_id")),
        node_id=first.get("node_id"),
        supersedes=SupersededItem(id=replaced, event_id=None) if replaced else None,
        superseded_by=_uuid(superseded_by),
        deleted=any(r["kind"] == f"{entity_type}.deleted" for r in rows),
        last_event_id=UUID(last["event_id"]),
    )


async def _sources(conn: Conn, tenant_id: str, created: EventEnvelope, seen: dict[UUID, Related]) -> list[SourceFound]:
    """The sources a note's creation names, each with its own first event."""
    wanted = [
        (entity, kind, UUID(i))
        for field, (entity, kind) in SOURCE_FIELDS.items()
        for i in created.payload.get(field, [])
    ]
    if not wanted:
        return []
    cur = await conn.execute(
        f"SELECT originator_id, topic, state FROM {EVENTS_TABLE}"
        " WHERE originator_id = ANY(%s) AND originator_version = 1",
        ([i for _, _, i in wanted],),
    )
    # Stored payloads are read in their kind's current shape (domain.upcasting).
    firsts = {
        r["originator_id"]: (r["topic"], decode_state(r["topic"], bytes(r["state"]))) for r in await cur.fetchall()
    }
    linked = {seen[p].event.stream_id: p for p in created.parent_ids if p in seen}
    found: list[SourceFound] = []
    for entity, kind, source_id in wanted:
        topic, state = firsts.get(source_id, (None, None))
        ok = state is not None and topic == kind and state["tenant_id"] == tenant_id
        event_id = UUID(state["event_id"]) if ok and state else None
        found.append(
            SourceFound(
                entity_type=entity,
                id=source_id,
                created_event_id=event_id,
                linked_event_id=linked.get(source_id),
                distance=seen[event_id].distance if event_id in seen else None,
                actor=state["actor"] if ok and state else None,
                created_at=msgspec.convert(state["timestamp"], datetime) if ok and state else None,
            )
        )
    return found


def _classify(related: list[Related], item: ItemOrigin) -> ItemProvenance:
    """Sort the walked events under their headings, keeping the walk's order."""
    p = ItemProvenance(
        item=item, turns=[], tool_calls=[], llm_calls=[], node=None, approvals=[], sources=[], command=[],
        events=[], max_depth=0, limit=0, truncated=False,
    )  # fmt: skip
    by_id = {r.event.event_id: r for r in related}
    ran = {q for r in related if r.event.kind == "execution.started" for q in r.event.parent_ids}
    nodes: list[NodeFound] = []
    for r in related:
        e, pl = r.event, r.event.payload
        common: dict[str, Any] = {
            "event_id": e.event_id, "distance": r.distance, "actor": e.actor, "occurred_at": e.occurred_at,
        }  # fmt: skip
        done_by: dict[str, Any] = {"execution_id": _uuid(pl.get("execution_id")), "node_id": pl.get("node_id")}
        if e.kind.startswith("turn."):
            p.turns.append(
                TurnFound(
                    **common, **done_by, turn_id=e.stream_id, kind=e.kind, role=pl.get("role"),
                    sequence=pl.get("sequence"), scope_id=_uuid(pl.get("scope_id")),
                    trajectory_id=_uuid(pl.get("trajectory_id")),
                )
            )  # fmt: skip
        elif e.kind == "telemetry.tool_call":
            p.tool_calls.append(
                ToolCallFound(**common, **done_by, record_id=e.stream_id, tool=pl["tool"], error=pl.get("error"))
            )
        elif e.kind == "telemetry.llm_call":
            p.llm_calls.append(
                LlmCallFound(
                    **common, **done_by, record_id=e.stream_id, model=pl["model"],
                    input_tokens=pl.get("input_tokens", 0), output_tokens=pl.get("output_tokens", 0),
                    cost_usd=pl.get("cost_usd", 0.0),
                )
            )  # fmt: skip
        elif e.kind in NODE_KINDS:
            nodes.append(
                NodeFound(
                    **common, execution_id=e.stream_id, node_id=pl["node_id"], attempt=pl.get("attempt", 1), kind=e.kind
                )
            )
        elif e.kind == "execution.approval_answered":
            p.approvals.append(
                ApprovalFound(
                    **common, approval_id=UUID(pl["approval_id"]), execution_id=e.stream_id, node_id=pl["node_id"],
                    approved=pl["approved"], answered_by=e.actor, feedback=pl.get("feedback", ""),
                    state_hash=pl["state_hash"],
                )
            )  # fmt: skip
        reason: Reason | None = (
            "workflow_run" if e.event_id in ran and e.kind.startswith("workflow.")
            else "root" if not e.parent_ids
            else "stream_start" if e.version == 1 and not e.kind.startswith(_NOT_COMMANDS)
            else None
        )  # fmt: skip
        if reason is not None and r.distance > 0:
            p.command.append(CommandFound(**common, kind=e.kind, stream_id=e.stream_id, reason=reason))
    # The node that produced the item: the one it names if that one is on the way, else the nearest.
    named = [n for n in nodes if (n.execution_id, n.node_id) == (item.execution_id, item.node_id)]
    p.node = next(iter(named or nodes), None)
    if item.supersedes is not None:
        created = by_id[item.created_event_id].event
        item.supersedes.event_id = next(
            (q for q in created.parent_ids if q in by_id and by_id[q].event.stream_id == item.supersedes.id), None
        )
    p.events = [AncestorEvent(r.distance, r.event) for r in related]
    return p


async def provenance(
    conn: Conn, tenant_id: str, entity_type: EntityType, item_id: UUID, *, max_depth: int = 50, limit: int = 500
) -> ItemProvenance:
    """Walk back from the item's creation; 404 for an unknown item or another tenant's."""
    item = await _item(conn, tenant_id, entity_type, item_id)
    created = await get_event(conn, tenant_id, item.created_event_id)
    # One more than asked for tells whether the walk was cut by the limit.
    found = await walk(conn, tenant_id, created.event_id, upward=True, max_depth=max_depth, limit=limit + 1)
    truncated = len(found) > limit
    found = found[:limit]
    seen = {r.event.event_id for r in found} | {created.event_id}
    # Cut by depth: an event at the last level has a parent the walk did not reach.
    truncated = truncated or any(
        r.distance == max_depth and any(q not in seen for q in r.event.parent_ids) for r in found
    )
    related = [Related(created, 0), *found]
    result = _classify(related, item)
    result.sources = await _sources(conn, tenant_id, created, {r.event.event_id: r for r in related})
    result.max_depth, result.limit, result.truncated = max_depth, limit, truncated
    return result
