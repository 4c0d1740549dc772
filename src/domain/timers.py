"""Durable timers (an execution's, an agent's liveness, a lock's expiry), and the retry
backoff rule (pure).

A timer is a fact derived from recorded events (a deadline or a retry time written into
the event), so it survives any restart: whoever runs timers only has to find the due ones
and ask the aggregate to fire them. Firing is idempotent: the aggregate records the
consequence once and ignores a timer that no longer applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from domain.backoff import exponential_backoff


class TimerKind(StrEnum):
    NODE_TIMEOUT = "node_timeout"
    RETRY = "retry"
    EXECUTION_TIMEOUT = "execution_timeout"
    # Coordination: the timer's stream is an agent (its liveness deadline) or a lock
    # stream (a grant's expiry; ``node_id`` holds the grant's lock id).
    AGENT_OFFLINE = "agent_offline"
    LOCK_EXPIRY = "lock_expiry"


@dataclass(frozen=True)
class Timer:
    kind: TimerKind
    due_at: datetime
    node_id: str | None = None
    attempt: int = 0


DEFAULT_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 300.0


def retry_delay(attempt: int, config: dict[str, Any]) -> timedelta:
    """Exponential backoff after failed attempt ``attempt`` (1-based): base * 2^(attempt-1),
    capped. ``config["retry_backoff"]`` (seconds) sets the base per node."""
    base = config.get("retry_backoff", DEFAULT_BACKOFF_SECONDS)
    if not isinstance(base, int | float) or isinstance(base, bool) or base < 0:
        base = DEFAULT_BACKOFF_SECONDS
    return timedelta(seconds=exponential_backoff(attempt, float(base), MAX_BACKOFF_SECONDS))
