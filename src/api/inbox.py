"""/api/v1/agents/{agent_id}/inbox: an agent's messages as they arrive, over Server-Sent Events.

Most urgent first, each message once per agent (its delivery is recorded, so
``delivered_at`` is set and a second feed of the same agent does not get it again); see
``projections.message_inbox``. Outside Quipu an agent may instead follow its NATS subject
``<prefix>.agent.<tenant>.<agent_id>`` (the relay's copies of ``message.sent``), or send
``{"action": "subscribe_inbox", "agent_id"}`` on the WebSocket ``/ws``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, get
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import Principal
from api.context import ApiContext
from api.messages import MessageOut, row_out, service
from domain.agent import Agent
from domain.errors import NotFound
from projections.message_inbox import InboxFeed

RECONNECT_MS = 2000  # what an EventSource waits before it reconnects


class InboxController(Controller):
    path = "/api/v1/agents"
    tags = ["messages"]

    @get("/{agent_id:uuid}/inbox", operation_id="streamAgentInbox", media_type="text/event-stream")
    async def inbox(
        self, agent_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> ServerSentEvent:
        """The agent's undelivered messages, then new ones as they come: ``event`` is the message
        type, ``id`` the message id, ``data`` the message (JSON). Critical before high before normal
        before low; each is handed out once and marked delivered (acknowledge it when dealt with)."""
        feed = await open_inbox(ctx, principal, agent_id)
        return ServerSentEvent(_sse(feed), background=BackgroundTask(feed.close))


async def open_inbox(ctx: ApiContext, principal: Principal, agent_id: UUID) -> InboxFeed:
    """The agent's inbox feed (404 for an unknown, unregistered or another tenant's agent);
    shared by the SSE route and the WebSocket's ``subscribe_inbox``."""
    agent = await anyio.to_thread.run_sync(lambda: ctx.store.load(Agent, agent_id, principal.tenant_id))
    if agent.deleted:
        raise NotFound(f"agent {agent_id} was unregistered")
    context = principal.context()
    messages = service(ctx)

    async def deliver(message_id: UUID) -> bool:
        return await anyio.to_thread.run_sync(lambda: messages.deliver(context, message_id, agent_id))

    return InboxFeed(ctx.pool, principal.tenant_id, agent_id, deliver, ctx.inbox)


def inbox_body(row: dict[str, Any]) -> MessageOut:
    """A read-model row as the message the feeds send."""
    return row_out(row)


async def _sse(feed: InboxFeed) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(data=None, comment="inbox", retry=RECONNECT_MS)
    async with contextlib.aclosing(feed.messages()) as rows:
        async for row in rows:
            if row is None:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                continue
            body = inbox_body(row)
            yield ServerSentEventMessage(
                data=msgspec.json.encode(body).decode(), event=body.message_type, id=str(body.message_id)
            )
