"""The delivery of one scheduled callback node to its registered URL: each HTTP attempt is
an event, retried with backoff until the service accepts it (2xx) or the attempts run out.

One delivery per scheduling event (``execution.node_scheduled`` of a node that names a
``callback_id``); its stream id is derived from that event's id, and every attempt names
the scheduling event as a cause, so the DAG shows which scheduling each attempt served.
Attempts are numbered: recording attempt n twice is refused, which is what keeps a second
deliverer (or one restarted after a crash) from writing the same attempt again. The HTTP
call itself happens before the record and outside any transaction (see
docs/decisions/0007-signed-callback-deliveries.md): a crash in between repeats the call with
the same ``webhook-id``, so receivers may deduplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.backoff import exponential_backoff
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

DeliveryStatus = Literal["pending", "delivered", "dead"]
_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/callback-delivery")


def delivery_stream_id(scheduling_event_id: UUID) -> UUID:
    return uuid5(_NAMESPACE, str(scheduling_event_id))


def webhook_id(scheduling_event_id: UUID) -> str:
    """The Standard Webhooks message id: the same for every attempt of one delivery."""
    return f"msg_{scheduling_event_id.hex}"


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard Quipu tries: ``max_attempts`` HTTP calls of at most ``timeout_seconds`` each,
    waiting ``base_seconds`` after the first failure, doubling up to ``cap_seconds``."""

    max_attempts: int = 5
    timeout_seconds: float = 10.0
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def retry_after(self, attempt: int) -> timedelta:
        return timedelta(seconds=exponential_backoff(attempt, self.base_seconds, self.cap_seconds))


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP call came to. ``status_code`` is None when no response arrived."""

    started_at: datetime
    latency_ms: float
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@event_kind("delivery.attempted", 0xA201)
class DeliveryAttempted(DomainEvent, frozen=True, kw_only=True):
    scheduling_event_id: UUID  # the delivery's id: the node_scheduled event it delivers
    callback_id: str
    execution_id: UUID
    node_id: str
    node_attempt: int  # the node's attempt this delivery serves
    attempt: int  # the HTTP attempt, 1-based
    url: str
    outcome: Literal["delivered", "failed"]
    status_code: int | None = None
    latency_ms: float
    error: str | None = None
    retry_at: datetime | None = None  # set when another attempt will follow


@event_kind("delivery.dead", 0xA202)
class DeliveryDead(DomainEvent, frozen=True, kw_only=True):
    """No more attempts: the node's attempt is failed with this error in the same transaction."""

    scheduling_event_id: UUID
    callback_id: str
    execution_id: UUID
    node_id: str
    attempts: int
    error: str


@dataclass(frozen=True)
class Target:
    """What a delivery is for: the scheduling event and the node attempt it scheduled."""

    scheduling_event_id: UUID
    callback_id: str
    execution_id: UUID
    node_id: str
    node_attempt: int
    url: str


@aggregate_root("delivery")
class Delivery(Aggregate):
    callback_id: str
    execution_id: UUID
    node_id: str
    attempts: int
    status: DeliveryStatus
    last_error: str | None
    retry_at: datetime | None  # when the next attempt is due, while pending

    @classmethod
    def record_first(
        cls, ctx: CommandContext, target: Target, result: AttemptResult, policy: DeliveryPolicy
    ) -> Delivery:
        delivery = cls._create(
            DeliveryAttempted,
            CommandContext(ctx.tenant_id, ctx.actor, (target.scheduling_event_id,)),
            aggregate_id=delivery_stream_id(target.scheduling_event_id),
            correlation_id=target.execution_id,
            **_attempt_fields(target, 1, result, policy),
        )
        delivery._maybe_dead(ctx, target, policy)
        return delivery

    def record(
        self, ctx: CommandContext, target: Target, attempt: int, result: AttemptResult, policy: DeliveryPolicy
    ) -> None:
        """Record attempt ``attempt``; 409 unless it is the next one of a pending delivery."""
        if self.status != "pending":
            raise Conflict(f"delivery of node '{self.node_id}' is {self.status}")
        if attempt != self.attempts + 1:
            raise Conflict(f"attempt {attempt} of this delivery is recorded already (attempts: {self.attempts})")
        self._trigger(
            DeliveryAttempted,
            CommandContext(ctx.tenant_id, ctx.actor, (target.scheduling_event_id,)),
            **_attempt_fields(target, attempt, result, policy),
        )
        self._maybe_dead(ctx, target, policy)

    def _maybe_dead(self, ctx: CommandContext, target: Target, policy: DeliveryPolicy) -> None:
        if self.status == "pending" and self.attempts >= policy.max_attempts:
            error = f"callback '{target.callback_id}' not delivered after {self.attempts} attempts: {self.last_error}"
            self._trigger(
                DeliveryDead,
                ctx,
                scheduling_event_id=target.scheduling_event_id,
                callback_id=target.callback_id,
                execution_id=target.execution_id,
                node_id=target.node_id,
                attempts=self.attempts,
                error=error,
            )

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, DeliveryAttempted):
            self.callback_id = event.callback_id
            self.execution_id = event.execution_id
            self.node_id = event.node_id
            self.attempts = event.attempt
            self.status = "delivered" if event.outcome == "delivered" else "pending"
            self.last_error = event.error
            self.retry_at = event.retry_at
        elif isinstance(event, DeliveryDead):
            self.status = "dead"
            self.retry_at = None
            self.last_error = event.error
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Delivery cannot apply {type(event).__name__}")


def _attempt_fields(target: Target, attempt: int, result: AttemptResult, policy: DeliveryPolicy) -> dict[str, object]:
    retry_at = None
    if not result.delivered and attempt < policy.max_attempts:
        retry_at = result.started_at + timedelta(milliseconds=result.latency_ms) + policy.retry_after(attempt)
    error = result.error
    if error is None and not result.delivered:
        error = f"HTTP {result.status_code}"
    return {
        "scheduling_event_id": target.scheduling_event_id,
        "callback_id": target.callback_id,
        "execution_id": target.execution_id,
        "node_id": target.node_id,
        "node_attempt": target.node_attempt,
        "attempt": attempt,
        "url": target.url,
        "outcome": "delivered" if result.delivered else "failed",
        "status_code": result.status_code,
        "latency_ms": round(result.latency_ms, 3),
        "error": error,
        "retry_at": retry_at,
    }
