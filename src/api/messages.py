"""/api/v1/messages: messages between agents (CELLSTATE reference): send, list with filters,
get, acknowledge. ``in_reply_to`` makes a message a reply whose event names the answered
message as its cause. Live delivery: ``/api/v1/agents/{id}/inbox`` (``api.inbox``)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import anyio.to_thread
import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import Principal, bind_correlation
from api.context import ApiContext
from api.pagination import Limit, Offset
from api.resource_helpers import Causes, created, from_row, with_etag
from api.workflows import IdempotencyKey
from commands.messages import MessageService
from domain.message import (
    AgentTarget,
    ArtifactIds,
    Message,
    MessageDraft,
    MessagePriority,
    MessageType,
    Payload,
)
from projections.messages import list_messages


class MessageSend(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``to``: ``{"agent_id"}`` or ``{"agent_type"}``; absent, null or ``{}``: every agent of the
    tenant but the sender."""

    from_agent_id: UUID
    message_type: MessageType
    priority: MessagePriority = "normal"
    payload: Payload = ""
    to: AgentTarget | None = None
    trajectory_id: UUID | None = None
    scope_id: UUID | None = None
    artifact_ids: ArtifactIds = []
    expires_at: datetime | None = None
    in_reply_to: UUID | None = None
    caused_by: Causes = []


class Acknowledge(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    agent_id: UUID
    caused_by: Causes = []


class TargetOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    agent_id: UUID | None = None
    agent_type: str | None = None


class MessageOut(msgspec.Struct, kw_only=True):
    message_id: UUID
    tenant_id: str
    sender_id: UUID
    from_agent_id: UUID
    to: TargetOut
    recipient_ids: list[UUID]
    message_type: str
    priority: str
    payload: str
    trajectory_id: UUID | None
    scope_id: UUID | None
    artifact_ids: list[UUID]
    expires_at: datetime | None
    in_reply_to: UUID | None
    created_at: datetime
    delivered_at: datetime | None
    acknowledged_at: datetime | None
    version: int
    last_event_id: UUID | None
    links: dict[str, str] = msgspec.field(default_factory=dict, name="_links")

    def __post_init__(self) -> None:
        self.links = {"self": f"/api/v1/messages/{self.message_id}", "sender": f"/api/v1/agents/{self.from_agent_id}"}
        if self.in_reply_to:
            self.links["in_reply_to"] = f"/api/v1/messages/{self.in_reply_to}"


class MessagePage(msgspec.Struct, kw_only=True):
    messages: list[MessageOut]
    total: int
    limit: int
    offset: int


def message_out(m: Message) -> MessageOut:
    return MessageOut(
        message_id=m.id,
        tenant_id=m.tenant_id,
        sender_id=m.from_agent_id,
        from_agent_id=m.from_agent_id,
        to=TargetOut(agent_id=m.to_agent_id, agent_type=m.to_agent_type),
        recipient_ids=m.recipient_ids,
        message_type=m.message_type,
        priority=m.priority,
        payload=m.payload,
        trajectory_id=m.trajectory_id,
        scope_id=m.scope_id,
        artifact_ids=m.artifact_ids,
        expires_at=m.expires_at,
        in_reply_to=m.in_reply_to,
        created_at=m.created_on,
        delivered_at=m.delivered_at,
        acknowledged_at=m.acknowledged_at,
        version=m.version,
        last_event_id=m.last_event_id,
    )


def row_out(row: dict[str, object]) -> MessageOut:
    """A read-model row in the response shape."""
    to = {"agent_id": row["to_agent_id"], "agent_type": row["to_agent_type"]}
    fields = {k: v for k, v in row.items() if k not in ("to_agent_id", "to_agent_type")}
    return from_row({**fields, "sender_id": row["from_agent_id"], "to": to}, MessageOut)  # type: ignore[no-any-return]


def service(ctx: ApiContext) -> MessageService:
    """Stateless over the event store: building one per request is free."""
    return MessageService(ctx.store)


class MessageController(Controller):
    path = "/api/v1/messages"
    tags = ["messages"]

    @post("/", operation_id="sendMessage", opt={"scope": "write"}, status_code=201)
    async def send(
        self,
        data: JSONBody[MessageSend],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        idempotency_key: IdempotencyKey,
    ) -> Response[MessageOut]:
        """Send a message from a registered agent to one agent, every agent of a type, or every
        agent (409 when no agent receives it). Safe to retry with ``Idempotency-Key``."""
        raw = msgspec.to_builtins(data)
        fields = {k: v for k, v in msgspec.structs.asdict(data).items() if k != "caused_by"}
        draft = MessageDraft(**fields)
        message, is_new = await anyio.to_thread.run_sync(
            lambda: service(ctx).send(
                principal.context(data.caused_by), draft, idempotency_key=idempotency_key, raw_body=raw
            )
        )
        bind_correlation(message.correlation_id)
        return created(message_out(message), f"/api/v1/messages/{message.id}", message.version, created_now=is_new)

    @get("/", operation_id="listMessages")
    async def list_all(
        self,
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
        message_type: FromQuery[MessageType | None] = None,
        from_agent_id: FromQuery[UUID | None] = None,
        to_agent_id: FromQuery[UUID | None] = None,
        to_agent_type: FromQuery[str | None] = None,
        trajectory_id: FromQuery[UUID | None] = None,
        priority: FromQuery[MessagePriority | None] = None,
        undelivered_only: FromQuery[bool] = False,
        unacknowledged_only: FromQuery[bool] = False,
    ) -> MessagePage:
        """Messages, newest first, from the ``messages`` read model. With ``to_agent_id``, the
        undelivered and unacknowledged filters mean "to that agent"."""
        async with ctx.read_models.connection() as conn:
            rows, total = await list_messages(
                conn,
                principal.tenant_id,
                message_type=message_type,
                from_agent_id=from_agent_id,
                to_agent_id=to_agent_id,
                to_agent_type=to_agent_type,
                trajectory_id=trajectory_id,
                priority=priority,
                undelivered_only=undelivered_only,
                unacknowledged_only=unacknowledged_only,
                limit=limit,
                offset=offset,
            )
        return MessagePage(messages=[row_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @get("/{message_id:uuid}", operation_id="getMessage")
    async def get_one(
        self, message_id: FromPath[UUID], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Response[MessageOut]:
        """A message from the event store (no lag), with when it was first delivered and acknowledged."""
        message = await anyio.to_thread.run_sync(lambda: service(ctx).get(principal.tenant_id, message_id))
        bind_correlation(message.correlation_id)
        return with_etag(message_out(message), message.version)

    @post("/{message_id:uuid}/acknowledge", operation_id="acknowledgeMessage", opt={"scope": "write"}, status_code=200)
    async def acknowledge(
        self,
        message_id: FromPath[UUID],
        data: JSONBody[Acknowledge],
        ctx: NamedDependency[ApiContext],
        principal: NamedDependency[Principal],
    ) -> Response[MessageOut]:
        """A recipient acknowledges the message (409: not a recipient, acknowledged already, or expired)."""
        message = await anyio.to_thread.run_sync(
            lambda: service(ctx).acknowledge(principal.context(data.caused_by), message_id, data.agent_id)
        )
        bind_correlation(message.correlation_id)
        return with_etag(message_out(message), message.version)
