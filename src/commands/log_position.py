"""The log position a request reached: the highest notification id its commands appended.

A request opens a ``track()`` scope (the API does, for every request); the event store
reports every append into it (``reached``), from whatever thread the command ran in -
threads started for the request copy its context and so share the scope's holder. The
API returns the position in the ``Quipu-Log-Position`` header, so a client can ask a read
model for at least that position on any process or replica (read-your-writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar

_reached: ContextVar[list[int] | None] = ContextVar("quipu_log_position", default=None)


def track() -> list[int]:
    """Start collecting for the current context; the returned holder fills as commands append."""
    holder: list[int] = []
    _reached.set(holder)
    return holder


def reached(notification_ids: Sequence[int]) -> None:
    """An append committed these notification ids (no-op outside a ``track`` scope)."""
    holder = _reached.get()
    if holder is not None and notification_ids:
        holder.append(max(notification_ids))


def position(holder: list[int]) -> int | None:
    """The highest position reached in a scope, None when nothing was appended."""
    return max(holder) if holder else None
