"""The deliverer: POSTs scheduled callback nodes to their registered URLs, signed (Standard
Webhooks), and records every attempt (no dual write).

It is driven from the log, as task dispatch is: an ``execution.node_scheduled`` event that
names a ``callback_id`` puts a pending row in the ``callback_deliveries`` read model, and each
recorded attempt moves the row's due time (the backoff is decided in the domain and written
into the event). The deliverer polls the due rows - durable, so a restart resumes them - and
for each asks the log (``DeliveryService.plan``) whether the node still waits and which
attempt is next, makes the HTTP call outside any transaction, then records the attempt as an
event caused by the scheduling event. A crash between the call and the record repeats the
call with the same ``webhook-id``: deliveries are at least once, and a node is completed once
because the run refuses a second completion of the same attempt.

One deliverer is active at a time (a Postgres advisory lock); standbys wait to take over.
See docs/decisions/0007-signed-callback-deliveries.md.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import structlog
from prometheus_client import Counter, Histogram
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from bus.runtime import become_leader, pause, run_until_stopped
from commands.callbacks import CallbackService
from commands.deliveries import DeliveryService
from commands.errors import ConcurrencyConflict
from domain.delivery import AttemptResult, Target, webhook_id
from domain.errors import Conflict, NotFound
from domain.execution import Execution
from projections.applier import ensure_schema
from projections.callbacks import CallbacksProjection, DueDelivery, due_deliveries
from quipu_client.webhooks import webhook_headers

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode

ATTEMPTS = Counter("quipu_callback_attempts_total", "Callback delivery attempts", ["outcome"])
LATENCY = Histogram("quipu_callback_attempt_seconds", "Duration of callback delivery attempts")

# A row the log says is not (yet) due is looked at again after this long, at the latest.
RECHECK_SECONDS = 2.0
USER_AGENT = "quipu-callbacks/1"


class Deliverer:
    def __init__(
        self,
        database_url: str,
        deliveries: DeliveryService,
        callbacks: CallbackService,
        *,
        leader_key: str = "default",
        interval: float = 0.2,
        batch_size: int = 100,
        concurrency: int = 16,
    ) -> None:
        self._database_url = database_url
        self._deliveries = deliveries
        self._callbacks = callbacks
        self._leader_key = leader_key
        self._interval = interval
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        # Deliveries handled or under way, with when to look at them again (monotonic).
        self._next_look: dict[Any, float] = {}
        self._in_flight: set[Any] = set()
        self.attempts = 0

    async def run(self, stop: asyncio.Event) -> None:
        structlog.contextvars.clear_contextvars()  # nothing of whoever started us belongs on our lines
        await run_until_stopped(stop, self._run_as_leader, "deliverer_retrying", runner=self._leader_key)

    async def _run_as_leader(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(
            self._database_url, autocommit=True, row_factory=dict_row, application_name="quipu-deliverer"
        ) as conn:
            if not await become_leader(conn, f"quipu-deliverer:{self._leader_key}", stop):
                return
            await ensure_schema(conn, CallbacksProjection())  # may start before its projector
            log.info("deliverer_active", runner=self._leader_key)
            timeout = httpx.Timeout(self._deliveries.policy.timeout_seconds)
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
                tasks: set[asyncio.Task[None]] = set()
                try:
                    while not stop.is_set():
                        for row in await due_deliveries(conn, datetime.now(UTC), self._batch_size):
                            if self._should_look(row):
                                self._in_flight.add(row.delivery_id)
                                task = asyncio.create_task(self._deliver(http, row))
                                tasks.add(task)
                                task.add_done_callback(tasks.discard)
                        await pause(stop, self._interval)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)

    def _should_look(self, row: DueDelivery) -> bool:
        if row.delivery_id in self._in_flight:
            return False
        return self._next_look.get(row.delivery_id, 0.0) <= time.monotonic()

    async def _deliver(self, http: httpx.AsyncClient, row: DueDelivery) -> None:
        try:
            async with self._slots:
                wait = await self._deliver_due(http, row)
        except Exception as error:  # one bad delivery must not stop the others
            log.error("callback_delivery_failed", delivery_id=str(row.delivery_id), error=repr(error))
            wait = RECHECK_SECONDS
        finally:
            self._in_flight.discard(row.delivery_id)
        self._next_look[row.delivery_id] = time.monotonic() + wait
        if len(self._next_look) > 10 * self._batch_size:  # forget the oldest: the log stays the judge
            for key in sorted(self._next_look, key=self._next_look.__getitem__)[: self._batch_size]:
                del self._next_look[key]

    async def _deliver_due(self, http: httpx.AsyncClient, row: DueDelivery) -> float:
        """Make the next attempt if the log says it is due; seconds until the row is worth a look."""
        target = Target(row.delivery_id, row.callback_id, row.execution_id, row.node_id, row.node_attempt, "")
        due = await asyncio.to_thread(self._deliveries.plan, row.tenant_id, target)
        if due is None:
            return RECHECK_SECONDS  # over, or the read model lags behind the log
        if due.due_at is not None and (wait := (due.due_at - datetime.now(UTC)).total_seconds()) > 0:
            return min(wait, RECHECK_SECONDS)
        context = {
            "tenant_id": row.tenant_id,
            "callback_id": row.callback_id,
            "execution_id": str(row.execution_id),
            "node_id": row.node_id,
            "attempt": due.attempt,
        }
        try:
            callback = await asyncio.to_thread(self._callbacks.get, row.tenant_id, row.callback_id)
        except NotFound:
            callback = None
        started = datetime.now(UTC)
        clock = time.perf_counter()
        if callback is None or not callback.active:
            result = AttemptResult(started, 0.0, None, f"callback '{row.callback_id}' is not registered")
            url = callback.url if callback is not None else ""
        else:
            url = callback.url
            body = _encode(_payload(row, due.attempt, due.execution, started))
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **webhook_headers(self._callbacks.signing_key(callback), webhook_id(row.delivery_id), body),
            }
            result = await _post(http, url, body, headers, started, clock)
        target = Target(row.delivery_id, row.callback_id, row.execution_id, row.node_id, row.node_attempt, url)
        try:
            await asyncio.to_thread(self._deliveries.record, row.tenant_id, target, due.attempt, result)
        except (Conflict, ConcurrencyConflict) as error:  # recorded already (a second deliverer)
            log.info("callback_attempt_not_recorded", reason=str(error), **context)
            return RECHECK_SECONDS
        self.attempts += 1
        outcome = "delivered" if result.delivered else "failed"
        ATTEMPTS.labels(outcome).inc()
        LATENCY.observe(result.latency_ms / 1000)
        log.info(
            "callback_attempted",
            outcome=outcome,
            status_code=result.status_code,
            latency_ms=round(result.latency_ms, 1),
            error=result.error,
            **context,
        )
        if result.delivered:
            return float("inf")
        return min(self._deliveries.policy.retry_after(due.attempt).total_seconds(), RECHECK_SECONDS)


async def _post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], started: datetime, clock: float
) -> AttemptResult:
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return AttemptResult(started, _since(clock), None, "timed out")
    except httpx.HTTPError as error:
        return AttemptResult(started, _since(clock), None, f"{type(error).__name__}: {error}"[:500])
    refused = None if response.is_success else f"HTTP {response.status_code}: {response.text[:200]}"
    return AttemptResult(started, _since(clock), response.status_code, refused)


def _since(clock: float) -> float:
    return (time.perf_counter() - clock) * 1000


def _payload(row: DueDelivery, attempt: int, execution: Execution, now: datetime) -> dict[str, Any]:
    """The task as the service receives it (Standard Webhooks' {type, timestamp, data} envelope)."""
    node = execution.node(row.node_id)
    base = f"/api/v1/executions/{execution.id}"
    answer = {"decision_path": f"{base}/decisions/{node.id}"} if node.type == "decision" else {}
    return {
        "type": "node.scheduled",
        "timestamp": now.isoformat(),
        "data": {
            "delivery_id": str(row.delivery_id),
            "callback_id": row.callback_id,
            "tenant_id": row.tenant_id,
            "execution_id": str(execution.id),
            "workflow_id": str(execution.workflow_id),
            "node_id": node.id,
            "node_name": node.name,
            "node_type": node.type,
            "attempt": row.node_attempt,
            "delivery_attempt": attempt,
            "inputs": execution.state,
            "config": node.config,
            "deadline": execution.node_deadlines.get(node.id),
            "complete_path": f"{base}/nodes/{node.id}/complete",
            "fail_path": f"{base}/nodes/{node.id}/fail",
            **answer,
        },
    }
