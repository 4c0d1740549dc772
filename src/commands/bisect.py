"""Bisect a run: the first event after which a condition holds on its state (``domain.bisect``).

Each probe is a state-as-of read (the execution rebuilt from the log as of a version, from
its nearest snapshot), the same read ``GET /executions/{id}/state?as_of=`` makes; nothing is
re-run and no read model is asked. The condition is the edges' grammar
(``domain.conditions``), evaluated on the state exactly as a decision would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import anyio.to_thread

from commands import forensics
from commands.executions import ExecutionService
from commands.read_pool import ReadPool
from domain.bisect import BisectResult, bisect, max_probes
from domain.conditions import Condition, ConditionError, parse
from domain.envelope import EventEnvelope
from domain.errors import FieldProblem, ValidationFailed
from domain.state_diff import Change, diff


@dataclass(frozen=True)
class Bisection:
    execution_id: UUID
    condition: str
    result: BisectResult
    max_probes: int
    event: EventEnvelope | None  # the event found (None: the condition does not hold at the end)
    changes: list[Change]  # what that event changed in the state (from the state right before it)


def parse_condition(text: str) -> Condition:
    """422 ``invalid_condition`` naming what does not parse."""
    try:
        return parse(text)
    except (ConditionError, RecursionError) as error:
        message = str(error) if isinstance(error, ConditionError) else "the condition is nested too deeply"
        raise ValidationFailed([FieldProblem("condition", message, "invalid_condition")]) from None


class BisectService:
    def __init__(self, pool: ReadPool, executions: ExecutionService) -> None:
        self._pool = pool
        self._executions = executions

    async def bisect(self, tenant_id: str, execution_id: UUID, condition_text: str) -> Bisection:
        """404 for an unknown run; 422 for a condition that does not parse."""
        condition = parse_condition(condition_text)

        def search() -> tuple[BisectResult, dict[int, tuple[UUID | None, dict[str, Any]]]]:
            # Each probe rebuilds the execution (synchronous store reads): off the event loop.
            now = self._executions.get(tenant_id, execution_id, deleted_ok=True)
            seen: dict[int, tuple[UUID | None, dict[str, Any]]] = {now.version: (now.last_event_id, now.state)}

            def holds(version: int) -> bool:
                if version not in seen:
                    then = self._executions.get(tenant_id, execution_id, version, deleted_ok=True)
                    seen[version] = (then.last_event_id, then.state)
                return condition.evaluate(seen[version][1])

            return bisect(now.version, holds), seen

        result, seen = await anyio.to_thread.run_sync(search)
        event: EventEnvelope | None = None
        changes: list[Change] = []
        if result.version is not None:
            # The search ended with the version right before the answer probed (false), or
            # the answer is the run's first event, before which there was no state.
            event_id, after = seen[result.version]
            before = seen[result.version - 1][1] if result.version > 1 else {}
            changes = diff(before, after).changes
            assert event_id is not None  # every version is an event
            async with self._pool.connection() as conn:
                event = await forensics.get_event(conn, tenant_id, event_id)
        return Bisection(execution_id, condition_text, result, max_probes(result.head), event, changes)
