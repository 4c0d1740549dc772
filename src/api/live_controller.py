"""Live updates over Server-Sent Events and a WebSocket (the Analemma OS reference's messages).

Both carry the same messages (see ``api.live``). SSE: one stream per execution, resumed
with ``Last-Event-ID``. WebSocket: one socket, any number of subscriptions, each resumed
with its own ``last_event_id``; every message names its ``execution_id`` and ``event_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

import msgspec
import structlog
from litestar import Controller, WebSocket, get, websocket
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import FromPath, FromQuery, HeaderParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import Principal, bind_correlation, socket_principal
from api.context import ApiContext
from api.inbox import inbox_body, open_inbox
from api.live import ExecutionFeed
from api.live_hitp import HitpApprove, HitpCommand, HitpReject, HitpResume, answer
from api.live_messages import LiveMessage
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.ids import uuid7
from projections.message_inbox import InboxFeed

log = structlog.get_logger(__name__)
LastEventId = Annotated[UUID | None, HeaderParameter(name="Last-Event-ID")]
RECONNECT_MS = 2000  # what an EventSource waits before it reconnects
MAX_SUBSCRIPTIONS = 100  # per socket
OUTBOX_SIZE = 1000  # messages waiting for a slow client before subscriptions wait too


class LiveController(Controller):
    path = "/api/v1"
    tags = ["live"]

    @get(
        "/executions/{execution_id:uuid}/events",
        operation_id="streamExecutionEvents",
        media_type="text/event-stream",
    )
    async def stream_events(
        self,
        execution_id: FromPath[UUID],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        last_event_id_header: LastEventId = None,
        last_event_id: FromQuery[UUID | None] = None,
        from_start: FromQuery[bool] = False,
    ) -> ServerSentEvent:
        """The execution's events as they happen: ``id`` is the event id, ``event`` the message
        type (progress, glass_box, hitp_required, error, completed), ``data`` JSON. After a
        drop, send ``Last-Event-ID`` (or ``?last_event_id=``) to get exactly what followed it;
        ``?from_start=true`` replays the whole run. The stream ends after ``completed``."""
        bind_correlation(execution_id)
        target = await ctx.live_feeds.find_target(
            principal.tenant_id, execution_id, last_event_id_header or last_event_id
        )
        feed = ExecutionFeed(ctx, target, from_start=from_start)
        # The feed closes itself when its stream ends; the task covers a client that left.
        return ServerSentEvent(_sse(feed), background=BackgroundTask(feed.close))

    @websocket("/ws", opt={"scope": "read"})
    async def socket(self, socket: WebSocket[Any, Any, Any], ctx: NamedDependency[ApiContext]) -> None:
        """Subscribe to executions: ``{"action": "subscribe", "execution_id", "last_event_id"?}``,
        ``unsubscribe``, ``ping``; to an agent's messages: ``subscribe_inbox`` / ``unsubscribe_inbox``
        with ``agent_id``; answer a person's gate: ``resume`` / ``approve`` / ``reject`` with
        ``execution_id`` (``api.live_hitp``; the key needs the ``write`` scope). Auth by
        ``Authorization: Bearer`` or ``?token=``; a refused key closes the handshake with 4401 / 4403."""
        try:
            principal = await socket_principal(socket, ctx)
        except (NotAuthorizedException, PermissionDeniedException) as error:
            await socket.close(code=4000 + error.status_code, reason=error.detail)
            return
        await socket.accept()
        await LiveSession(socket, ctx, principal).run()


async def _sse(feed: ExecutionFeed) -> AsyncIterator[ServerSentEventMessage]:
    yield ServerSentEventMessage(data=None, comment="live", retry=RECONNECT_MS)
    async with contextlib.aclosing(feed.messages()) as messages:
        async for message in messages:
            if message is None:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
            else:
                yield ServerSentEventMessage(data=message.json(), event=message.type, id=str(message.event_id))


class Subscribe(msgspec.Struct, tag="subscribe", tag_field="action", forbid_unknown_fields=True, kw_only=True):
    execution_id: UUID
    last_event_id: UUID | None = None
    from_start: bool = False


class Unsubscribe(msgspec.Struct, tag="unsubscribe", tag_field="action", forbid_unknown_fields=True, kw_only=True):
    execution_id: UUID


class Ping(msgspec.Struct, tag="ping", tag_field="action", forbid_unknown_fields=True):
    pass


class SubscribeInbox(msgspec.Struct, tag="subscribe_inbox", tag_field="action", forbid_unknown_fields=True):
    agent_id: UUID


class UnsubscribeInbox(msgspec.Struct, tag="unsubscribe_inbox", tag_field="action", forbid_unknown_fields=True):
    agent_id: UUID


_commands = msgspec.json.Decoder(
    Subscribe | Unsubscribe | Ping | SubscribeInbox | UnsubscribeInbox | HitpResume | HitpApprove | HitpReject
)


class LiveSession:
    """One socket: a reader that takes commands, a writer that owns sending, and a task per
    subscription. A bad command gets an ``error`` message; only the client closes."""

    def __init__(self, socket: WebSocket[Any, Any, Any], ctx: ApiContext, principal: Principal) -> None:
        self._socket = socket
        self._ctx = ctx
        self._principal = principal
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX_SIZE)
        self._follows: dict[UUID, asyncio.Task[None]] = {}
        self.connection_id = str(uuid7())

    async def run(self) -> None:
        await self._send({"type": "connected", "connection_id": self.connection_id})
        reader = asyncio.create_task(self._read())
        writer = asyncio.create_task(self._write())
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks = [reader, writer, *self._follows.values()]
            for task in tasks:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.warning("live_socket_task_failed", error=repr(outcome))

    async def _read(self) -> None:
        while True:
            event = await self._socket.receive()
            if event["type"] == "websocket.disconnect":
                return
            data = event.get("text") or event.get("bytes") or ""
            await self._handle(data if isinstance(data, str | bytes) else "")

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            await self._socket.send_text(msgspec.json.encode(message).decode())

    async def _send(self, message: dict[str, Any]) -> None:
        await self._outbox.put(message)

    async def _error(self, code: str, message: str, execution_id: UUID | None = None) -> None:
        body: dict[str, Any] = {"type": "error", "error_code": code, "message": message}
        if execution_id is not None:
            body["execution_id"] = str(execution_id)
        await self._send(body)

    async def _handle(self, data: str | bytes) -> None:
        try:
            command = _commands.decode(data)
        except msgspec.DecodeError as error:  # also a wrong shape (ValidationError)
            await self._error("BAD_REQUEST", f"{error}; send a JSON object with an 'action'")
            return
        if isinstance(command, Ping):
            await self._send({"type": "pong"})
        elif isinstance(command, Subscribe):
            await self._subscribe(command)
        elif isinstance(command, SubscribeInbox):
            await self._subscribe_inbox(command.agent_id)
        elif isinstance(command, UnsubscribeInbox):
            await self._stop(command.agent_id)
            await self._send({"type": "unsubscribed_inbox", "agent_id": str(command.agent_id)})
        elif isinstance(command, HitpResume | HitpApprove | HitpReject):
            await self._answer(command)
        else:
            await self._stop(command.execution_id)
            await self._send({"type": "unsubscribed", "execution_id": str(command.execution_id)})

    async def _answer(self, command: HitpCommand) -> None:
        """A person's answer (``api.live_hitp``): needs the ``write`` scope, checked now."""
        execution_id = command.execution_id
        try:
            principal = await socket_principal(self._socket, self._ctx, "write")
            await self._send(await answer(self._ctx, principal, command))
        except (NotAuthorizedException, PermissionDeniedException) as error:
            await self._error("FORBIDDEN" if error.status_code == 403 else "UNAUTHORIZED", error.detail, execution_id)
        except NotFound as error:
            await self._error("NOT_FOUND", str(error), execution_id)
        except ValidationFailed as error:
            await self._error("BAD_REQUEST", str(error), execution_id)
        except Conflict as error:
            await self._error("CONFLICT", str(error), execution_id)

    async def _subscribe(self, command: Subscribe) -> None:
        execution_id = command.execution_id
        if execution_id not in self._follows and len(self._follows) >= MAX_SUBSCRIPTIONS:
            await self._error("TOO_MANY_SUBSCRIPTIONS", f"at most {MAX_SUBSCRIPTIONS} per socket", execution_id)
            return
        try:
            target = await self._ctx.live_feeds.find_target(
                self._principal.tenant_id, execution_id, command.last_event_id
            )
        except NotFound as error:
            await self._error("NOT_FOUND", str(error), execution_id)
            return
        except ValidationFailed as error:
            await self._error("BAD_REQUEST", str(error), execution_id)
            return
        except Exception:
            log.exception("live_subscribe_failed", execution_id=str(execution_id))
            await self._error("UNAVAILABLE", "the subscription could not start; retry shortly", execution_id)
            return
        await self._stop(execution_id)  # subscribing again restarts from the given point
        await self._send({"type": "subscribed", "execution_id": str(execution_id)})
        feed = ExecutionFeed(self._ctx, target, from_start=command.from_start)
        self._follows[execution_id] = asyncio.create_task(self._follow(execution_id, feed))

    async def _subscribe_inbox(self, agent_id: UUID) -> None:
        """The agent's messages, most urgent first, each once (``api.inbox``); every one is
        sent as ``{"type": "message", "agent_id", "message"}``."""
        if agent_id not in self._follows and len(self._follows) >= MAX_SUBSCRIPTIONS:
            await self._error("TOO_MANY_SUBSCRIPTIONS", f"at most {MAX_SUBSCRIPTIONS} per socket")
            return
        try:
            feed = await open_inbox(self._ctx, self._principal, agent_id)
        except NotFound as error:
            await self._error("NOT_FOUND", str(error))
            return
        await self._stop(agent_id)
        await self._send({"type": "subscribed_inbox", "agent_id": str(agent_id)})
        self._follows[agent_id] = asyncio.create_task(self._follow_inbox(agent_id, feed))

    async def _follow_inbox(self, agent_id: UUID, feed: InboxFeed) -> None:
        try:
            async with contextlib.aclosing(feed.messages()) as rows:
                async for row in rows:
                    if row is not None:
                        message = msgspec.to_builtins(inbox_body(row))
                        await self._send({"type": "message", "agent_id": str(agent_id), "message": message})
        except Exception:
            log.exception("inbox_subscription_failed", agent_id=str(agent_id))
            await self._error("SUBSCRIPTION_FAILED", "the inbox subscription stopped; subscribe again")
        finally:
            if self._follows.get(agent_id) is asyncio.current_task():
                del self._follows[agent_id]

    async def _follow(self, execution_id: UUID, feed: ExecutionFeed) -> None:
        """Forward one feed until it completes (the subscription then ends by itself)."""
        try:
            async with contextlib.aclosing(feed.messages()) as messages:
                async for message in messages:
                    if isinstance(message, LiveMessage):
                        await self._send(message.body)
        except Exception:
            log.exception("live_subscription_failed", execution_id=str(execution_id))
            await self._error("SUBSCRIPTION_FAILED", "the subscription stopped; subscribe again", execution_id)
        finally:
            if self._follows.get(execution_id) is asyncio.current_task():
                del self._follows[execution_id]

    async def _stop(self, execution_id: UUID) -> None:
        task = self._follows.pop(execution_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
