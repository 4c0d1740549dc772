"""Invariant 8: a message from the bus is a hint, the log is the fact (docs/decisions/0006-log-trust.md).

Every consumer of ``quipu.ev.>`` (projectors, the dispatcher, live feeds) reads a message
only as a claim - "the event with this id and hash sits at this notification id" - and
acts on the envelope the log holds there. A claim the log does not confirm (no event at
that position, another event id, another hash, or not even readable) is dropped, logged
and counted in ``quipu_bus_messages_rejected_total{consumer,reason}``; it moves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol
from uuid import UUID

import msgspec
import structlog
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg.rows import DictRow

from commands.log import read_at
from domain.envelope import EventEnvelope

log = structlog.get_logger(__name__)
REJECTED = Counter(
    "quipu_bus_messages_rejected_total",
    "Bus messages dropped because the event log does not confirm them",
    ["consumer", "reason"],
)
NOT_IN_LOG = "not_in_log"
EVENT_MISMATCH = "event_mismatch"
HASH_MISMATCH = "hash_mismatch"
MALFORMED = "malformed"


class Claim(msgspec.Struct, frozen=True):
    """What a message says about itself (the rest of its envelope is never trusted)."""

    event_id: UUID
    notification_id: int
    hash: str = ""


_decode_claim = msgspec.json.Decoder(Claim).decode


def claim_of(data: bytes, headers: Mapping[str, str] | None) -> Claim | None:
    """The message's claim, or None when it is unreadable or its headers contradict its
    body (both are the publisher's; a relay never makes them disagree)."""
    try:
        claim = _decode_claim(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    headers = headers or {}
    if headers.get("Nats-Msg-Id", str(claim.event_id)) != str(claim.event_id):
        return None
    if headers.get("Quipu-Notification-Id", str(claim.notification_id)) != str(claim.notification_id):
        return None
    return claim


class Hint(Protocol):
    """A bus message as far as the log check cares (a nats-py ``Msg`` is one)."""

    @property
    def data(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str] | None: ...
    @property
    def subject(self) -> str: ...


def readable_claims(consumer: str, hints: Iterable[Hint]) -> list[tuple[Claim, str]]:
    """(claim, subject) of every readable message; the unreadable ones are rejected."""
    claims: list[tuple[Claim, str]] = []
    for hint in hints:
        claim = claim_of(hint.data, hint.headers)
        if claim is None:
            reject(consumer, MALFORMED, subject=hint.subject)
        else:
            claims.append((claim, hint.subject))
    return claims


def mismatch(claim: Claim, logged: tuple[UUID, str] | None) -> str | None:
    """Why the log (event id and hash at the claimed position) refutes ``claim``; None if
    it confirms it. A claim without a hash is checked on its event id alone."""
    if logged is None:
        return NOT_IN_LOG
    if logged[0] != claim.event_id:
        return EVENT_MISMATCH
    if claim.hash and claim.hash != logged[1]:
        return HASH_MISMATCH
    return None


def reject(consumer: str, reason: str, claim: Claim | None = None, subject: str = "") -> None:
    REJECTED.labels(consumer, reason).inc()
    log.warning(
        "bus_message_rejected",
        consumer=consumer,
        reason=reason,
        subject=subject,
        event_id=str(claim.event_id) if claim else None,
        notification_id=claim.notification_id if claim else None,
    )


async def confirmed(
    conn: AsyncConnection[DictRow], consumer: str, claims: Sequence[tuple[Claim, str]]
) -> list[EventEnvelope]:
    """The log's envelopes for the (claim, subject) pairs the log confirms, in log order,
    each once; the others are rejected. One query for all of them."""
    logged = await read_at(conn, sorted({c.notification_id for c, _ in claims}))
    out: dict[int, EventEnvelope] = {}
    for claim, subject in claims:
        envelope = logged.get(claim.notification_id)
        reason = mismatch(claim, (envelope.event_id, envelope.hash) if envelope else None)
        if reason is not None:
            reject(consumer, reason, claim, subject)
        elif envelope is not None:
            out[envelope.notification_id] = envelope
    return [out[n] for n in sorted(out)]
