"""Live updates of one execution (Analemma OS reference): what SSE and WebSocket subscribers see.

One message per event of the execution's stream and of its glass-box telemetry, in log
(notification) order, each carrying the event's id: ``progress``, ``glass_box``,
``hitp_required`` (an approval node was scheduled), ``error`` (a node attempt failed) and
finally ``completed``, after which the feed ends. Checkpoints give no message; the state
travels in ``hitp_required`` and ``completed``. Never two messages for one event (an
approval's scheduling gives ``hitp_required``, not also ``progress``), so a client that
resumes after an event id cannot have received only part of what that event gave.

The feed itself (log first, then the bus, no gaps and no duplicates across a reconnect)
is ``commands.live_feed``, reached through ``ApiContext.live``; this module renders its
events into messages.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from api.context import ApiContext
from api.live_messages import LiveMessage, execution_message, glass_box
from commands.live_feed import KEEPALIVE_SECONDS
from commands.live_feed import ExecutionFeed as Feed
from commands.live_log import LiveTarget, find_target
from domain.envelope import EventEnvelope
from domain.execution import Execution

__all__ = ["ExecutionFeed", "LiveTarget", "find_target", "render"]


def render(envelope: EventEnvelope, execution: Execution | None) -> LiveMessage | None:
    """The message of one event (None: the event gives none, like a checkpoint)."""
    return glass_box(envelope) if execution is None else execution_message(envelope, execution)


class ExecutionFeed:
    """One subscriber's messages of one execution. ``messages`` yields None after
    ``keepalive`` quiet seconds (SSE sends a comment then). ``close`` is idempotent."""

    def __init__(
        self, ctx: ApiContext, target: LiveTarget, *, from_start: bool = False, keepalive: float = KEEPALIVE_SECONDS
    ) -> None:
        self._feed: Feed[LiveMessage] = ctx.live_feeds.follow(
            target, render, from_start=from_start, keepalive=keepalive
        )

    def messages(self) -> AsyncGenerator[LiveMessage | None, None]:
        return self._feed.messages()

    async def close(self) -> None:
        await self._feed.close()
