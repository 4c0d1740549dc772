"""Recording callback deliveries: each HTTP attempt the deliverer made, and the end of a
delivery that ran out of attempts (its node's attempt fails in the same transaction, so the
run retries the node or fails as for any failed task).

The deliverer calls ``plan`` before an HTTP call (is anything due, and which attempt is it)
and ``record`` after it; the call itself is never inside a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from commands.errors import ConcurrencyConflict
from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.delivery import AttemptResult, Delivery, DeliveryPolicy, Target, delivery_stream_id
from domain.errors import Conflict, NotFound
from domain.execution import Execution
from domain.execution_status import TERMINAL, WORKING

ACTOR = "system:deliverer"
_EXECUTION_RETRIES = 5  # a run changed by someone else while a delivery died: reload and retry


@dataclass(frozen=True)
class Due:
    """The next attempt of a delivery: its number, when, and the run as of now."""

    attempt: int
    due_at: datetime | None  # None: at once
    execution: Execution


class DeliveryService:
    def __init__(self, store: EventStore, policy: DeliveryPolicy) -> None:
        self._store = store
        self.policy = policy

    def plan(self, tenant_id: str, target: Target) -> Due | None:
        """The next attempt, or None when nothing is left to deliver: the delivery ended, or the
        node's attempt it was for is over (answered, failed, timed out) or the run ended."""
        delivery = self._find(tenant_id, target.scheduling_event_id)
        if delivery is not None and delivery.status != "pending":
            return None
        try:
            execution = self._store.load(Execution, target.execution_id, tenant_id)
        except NotFound:
            return None
        if execution.status in TERMINAL or execution.nodes.get(target.node_id) not in WORKING:
            return None
        if execution.attempts.get(target.node_id) != target.node_attempt:
            return None
        if delivery is None:
            return Due(1, None, execution)
        return Due(delivery.attempts + 1, delivery.retry_at, execution)

    def record(self, tenant_id: str, target: Target, attempt: int, result: AttemptResult) -> Delivery:
        """Record attempt ``attempt``; 409 if it was recorded already. When it was the last one,
        the delivery is dead and the node's attempt fails with it, in the same transaction."""
        ctx = CommandContext(tenant_id, ACTOR)
        for _ in range(_EXECUTION_RETRIES):
            delivery = self._find(tenant_id, target.scheduling_event_id)
            if delivery is None:
                if attempt != 1:
                    raise Conflict(f"attempt {attempt} before the first was recorded")
                delivery = Delivery.record_first(ctx, target, result, self.policy)
            else:
                delivery.record(ctx, target, attempt, result, self.policy)
            changed: list[Delivery | Execution] = [delivery]
            if delivery.status == "dead":
                changed.append(self._node_failed(ctx, delivery, target))
            try:
                self._store.save_all(*changed)
            except ConcurrencyConflict:
                continue  # the run moved on meanwhile (or another deliverer recorded: 409 next time)
            return delivery
        raise ConcurrencyConflict("the run kept changing while its callback delivery was recorded")

    def _node_failed(self, ctx: CommandContext, delivery: Delivery, target: Target) -> Execution:
        """The run with the node's attempt failed by the dead delivery (unchanged if it is over)."""
        execution = self._store.load(Execution, target.execution_id, ctx.tenant_id)
        assert delivery.last_event_id is not None
        cause = CommandContext(ctx.tenant_id, ACTOR, (delivery.last_event_id,))
        try:
            execution.fail_node(cause, target.node_id, delivery.last_error or "not delivered", target.node_attempt)
        except Conflict:
            execution.collect_events()  # answered or ended meanwhile: nothing to fail
        return execution

    def _find(self, tenant_id: str, scheduling_event_id: UUID) -> Delivery | None:
        try:
            return self._store.load(Delivery, delivery_stream_id(scheduling_event_id), tenant_id)
        except NotFound:
            return None
