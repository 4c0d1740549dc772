"""The explicit bound on one event (invariant 9, docs/architecture.md).

Every bound agrees end to end: request body (``QUIPU_MAX_BODY_BYTES``, 1 MiB) < largest
event (``QUIPU_MAX_EVENT_BYTES``, 4 MiB) < largest bus message (embedded NATS
``max_payload``, 8 MiB). An event can outgrow its request - a checkpoint carries the
merged state of every node so far - so the bound is checked on the encoded event itself,
before anything is appended, and the whole command is refused (HTTP 413).
"""

from __future__ import annotations

from domain.errors import DomainError

DEFAULT_MAX_EVENT_BYTES = 4 << 20
ENV_KEY = "MAX_EVENT_BYTES"  # eventsourcing reads it as QUIPU_MAX_EVENT_BYTES too


class EventTooLarge(DomainError):
    """A command would append an event larger than the bound (HTTP 413)."""

    def __init__(self, kind: str, size: int, limit: int) -> None:
        super().__init__(
            f"the command would record an event of {size} bytes ({kind}); events are limited to {limit} bytes"
        )
        self.kind = kind
        self.size = size
        self.limit = limit
