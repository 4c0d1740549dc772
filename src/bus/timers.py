"""The timer runner: fires durable timers when they fall due (executions' timeouts and
retries, agents' liveness deadlines, lock grants' expiry; the composition root routes each
kind to its service).

Timers are facts in the log (the ``timers`` read model holds them), so the runner keeps
no state worth saving: it polls the due rows and asks the aggregate to fire each one.
Firing is idempotent (the aggregate records a consequence once and answers False for a
timer that no longer applies), which makes the runner safe to restart or fail over: a new
leader may fire a timer again once, and nothing is recorded the second time.

One runner is active at a time (a Postgres advisory lock); standbys wait to take over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import structlog
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from bus.runtime import become_leader, pause, run_until_stopped
from commands.errors import ConcurrencyConflict
from domain.timers import TimerKind
from projections.applier import ensure_schema
from projections.timers import DueTimer, TimersProjection, due_timers

log = structlog.get_logger(__name__)

TIMERS_FIRED = Counter("quipu_timers_fired_total", "Timers that recorded a consequence", ["kind"])

FireTimer = Callable[[str, UUID, TimerKind, str | None, int], bool]

# A timer that did not apply (the projection has not yet seen its consequence, or the run
# is paused) is looked at again after this long rather than on every pass.
NOT_APPLICABLE_RETRY_SECONDS = 2.0
FAILED_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class _Key:
    """A timer's identity including attempt and due time: a new attempt is a new timer."""

    tenant_id: str
    execution_id: UUID
    kind: TimerKind
    node_id: str | None
    attempt: int
    due_at: datetime

    @classmethod
    def of(cls, t: DueTimer) -> _Key:
        return cls(t.tenant_id, t.execution_id, t.kind, t.node_id, t.attempt, t.due_at)


class TimerRunner:
    def __init__(
        self,
        database_url: str,
        fire: FireTimer,
        *,
        leader_key: str = "default",
        interval: float = 0.2,
        batch_size: int = 100,
    ) -> None:
        self._database_url = database_url
        self._fire = fire
        self._leader_key = leader_key
        self._interval = interval
        self._batch_size = batch_size
        # Timers already handled, with when to look at them again (inf: never, while the
        # row exists). Forgotten once the row is gone, so memory stays bounded.
        self._handled: dict[_Key, float] = {}
        self.fired = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; survives Postgres outages by reconnecting."""
        # This task's log context is its own: nothing bound by whoever started it (a
        # request id, a correlation) belongs on the timers' lines.
        structlog.contextvars.clear_contextvars()
        await run_until_stopped(stop, self._run_as_leader, "timer_runner_retrying", runner=self._leader_key)

    async def _run_as_leader(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(
            self._database_url, autocommit=True, row_factory=dict_row, application_name="quipu-timers"
        ) as conn:
            if not await become_leader(conn, f"quipu-timers:{self._leader_key}", stop):
                return
            await ensure_schema(conn, TimersProjection())  # the runner may start before its projector
            log.info("timer_runner_active", runner=self._leader_key)
            while not stop.is_set():
                due = await due_timers(conn, datetime.now(UTC), self._batch_size)
                await self._fire_due(due, complete=len(due) < self._batch_size)
                await pause(stop, self._interval)

    async def _fire_due(self, due: list[DueTimer], *, complete: bool) -> None:
        if complete:  # a full scan: rows that are gone can be forgotten
            present = {_Key.of(t) for t in due}
            self._handled = {k: v for k, v in self._handled.items() if k in present}
        for timer in due:
            key = _Key.of(timer)
            if self._handled.get(key, 0.0) > time.monotonic():
                continue
            self._handled[key] = await self._fire_one(timer)

    async def _fire_one(self, timer: DueTimer) -> float:
        """Fire one timer; returns when it may be looked at again."""
        context = {
            "tenant_id": timer.tenant_id,
            "execution_id": str(timer.execution_id),
            "kind": timer.kind.value,
            "node_id": timer.node_id,
            "attempt": timer.attempt,
        }
        try:
            fired = await asyncio.to_thread(
                self._fire, timer.tenant_id, timer.execution_id, timer.kind, timer.node_id, timer.attempt
            )
        except ConcurrencyConflict:
            log.info("timer_conflict", **context)  # someone else changed the run: next pass
            return 0.0
        except Exception as error:  # one bad timer must not stop the others
            log.error("timer_fire_failed", error=repr(error), **context)
            return time.monotonic() + FAILED_RETRY_SECONDS
        if not fired:
            log.debug("timer_not_applicable", **context)
            return time.monotonic() + NOT_APPLICABLE_RETRY_SECONDS
        self.fired += 1
        TIMERS_FIRED.labels(timer.kind.value).inc()
        lateness = (datetime.now(UTC) - timer.due_at).total_seconds()
        log.info("timer_fired", lateness_seconds=round(lateness, 3), **context)
        return float("inf")
