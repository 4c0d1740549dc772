"""Load-decide-save for the exchanges between agents (messages, delegations, handoffs).

Creates are idempotent by ``Idempotency-Key`` (the key decides the new stream's id, see
``commands.idempotency``); named ``caused_by`` events are checked for the tenant. A save
that loses a race on a stream is decided again on the fresh state, so the aggregate's
guards (its state machine) always judge the latest state: two concurrent accepts of one
delegation end in one acceptance and one 409.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict
from commands.idempotency import idempotent_id, replayed, request_hash
from commands.store import EventStore
from domain.aggregate import Aggregate, CommandContext
from domain.ids import uuid7

ATTEMPTS = 16
_A = TypeVar("_A", bound=Aggregate)
#: (new id, request hash, checked context) -> (the new aggregate, others to save first)
Decide = Callable[[UUID, str | None, CommandContext], tuple[_A, tuple[Aggregate, ...]]]


def create_once(
    store: EventStore,
    ctx: CommandContext,
    cls: type[_A],
    decide: Decide[_A],
    *,
    idempotency_key: str | None,
    raw_body: Any,
) -> tuple[_A, bool]:
    """Returns (the resource as first created, created_now)."""
    body_hash = request_hash(raw_body) if idempotency_key else None
    new_id = idempotent_id(ctx.tenant_id, cls.CATEGORY, idempotency_key) if idempotency_key else uuid7()
    if idempotency_key and (first := replayed(store, cls, new_id, ctx.tenant_id, body_hash, version=1)) is not None:
        return first, False
    checked = CommandContext(ctx.tenant_id, ctx.actor, check_causes(store, ctx.tenant_id, ctx.caused_by))
    for attempt in range(1, ATTEMPTS + 1):
        created, before = decide(new_id, body_hash, checked)
        try:
            store.save_all(*before, created)
        except ConcurrencyConflict:
            # A concurrent request with the same key won: answer as it did.
            if idempotency_key and (first := replayed(store, cls, new_id, ctx.tenant_id, body_hash, version=1)):
                return first, False
            if attempt == ATTEMPTS:
                raise
            continue
        return created, True
    raise AssertionError("unreachable")


def edit(
    store: EventStore,
    ctx: CommandContext,
    cls: type[_A],
    aggregate_id: UUID,
    change: Callable[[_A, CommandContext], tuple[Aggregate, ...] | None],
) -> _A:
    """Load, let ``change`` decide (it may return other aggregates to save in the same
    transaction, after this one), save; a lost race is decided again."""
    checked = CommandContext(ctx.tenant_id, ctx.actor, check_causes(store, ctx.tenant_id, ctx.caused_by))
    for attempt in range(1, ATTEMPTS + 1):
        found = store.load(cls, aggregate_id, ctx.tenant_id)
        after = change(found, checked) or ()
        try:
            store.save_all(found, *after)
        except ConcurrencyConflict:
            if attempt == ATTEMPTS:
                raise
            continue
        return found
    raise AssertionError("unreachable")
