"""What each role may do on NATS: the least that role needs, nothing tenant-crossing for workers.

Subjects of the JetStream API are ``$JS.API.<verb...>.<stream>[.<consumer>...]``; acks are
published to ``$JS.ACK.<stream>.<consumer>.…``. Quipu's own roles run inside Quipu and may
subscribe to ``_INBOX.>`` (replies); a worker runs outside, so its replies go to an inbox
below its own tenant, and it may reach only its own consumers on the task work-queue.
"""

from __future__ import annotations

import hashlib

from bus.nats_auth import Permissions
from bus.subjects import Subjects

REPLIES = "_INBOX.>"
WORKER_INBOX_ROOT = "_QUIPU_INBOX"


def _stream_admin(stream: str) -> tuple[str, ...]:
    """Look a stream up and create it when missing (every role may be the first to start)."""
    return (
        "$JS.API.INFO",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.CREATE.{stream}",
        f"$JS.API.STREAM.UPDATE.{stream}",
    )


def _consume(stream: str) -> tuple[str, ...]:
    """Durable and ephemeral consumers on ``stream``: create, look up, pull, ack, flow control."""
    return (
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.*.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def relay(subjects: Subjects) -> Permissions:
    """The only role that may publish events (and the copies of messages for their recipients)."""
    stream = subjects.events_stream
    return Permissions(
        publish=(
            subjects.all_events,
            subjects.all_agent_messages,
            *_stream_admin(stream),
            *_stream_admin(subjects.agent_messages_stream),
            f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>",
        ),
        subscribe=(REPLIES,),
    )


def projector(subjects: Subjects) -> Permissions:
    """Reads events; publishes nothing but JetStream API requests and acks."""
    stream = subjects.events_stream
    return Permissions(publish=(*_stream_admin(stream), *_consume(stream)), subscribe=(REPLIES,))


def dispatcher(subjects: Subjects) -> Permissions:
    """Reads events, publishes tasks and notices."""
    events, tasks, notices = subjects.events_stream, subjects.tasks_stream, subjects.notices_stream
    return Permissions(
        publish=(
            *_stream_admin(events),
            *_consume(events),
            *_stream_admin(tasks),
            *_stream_admin(notices),
            subjects.all_tasks,
            subjects.all_notices,
        ),
        subscribe=(REPLIES,),
    )


def api(subjects: Subjects) -> Permissions:
    """Live feeds (events), worker reports (request-reply) and the workers' task consumers."""
    events, tasks, notices = subjects.events_stream, subjects.tasks_stream, subjects.notices_stream
    return Permissions(
        publish=(
            *_stream_admin(events),
            *_consume(events),
            *_stream_admin(tasks),
            *_stream_admin(notices),
            f"$JS.API.CONSUMER.CREATE.{tasks}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{tasks}.>",
            f"$JS.API.CONSUMER.INFO.{tasks}.>",
            *_stream_admin(subjects.agent_messages_stream),
            *_consume(subjects.agent_messages_stream),  # the agents' inbox feeds
        ),
        subscribe=(REPLIES, subjects.all_reports),
        allow_responses=True,  # replies to workers' report requests, in their own inboxes
    )


def worker_consumer(tenant_id: str, agent_type: str) -> str:
    """The durable consumer of one tenant's tasks of one agent type (a single, unambiguous token)."""
    digest = hashlib.sha256(f"{tenant_id}\0{agent_type}".encode()).hexdigest()[:16]
    return f"worker_{tenant_id}_{digest}"


def worker_inbox(tenant_id: str) -> str:
    return f"{WORKER_INBOX_ROOT}.{tenant_id}"


def worker(subjects: Subjects, tenant_id: str, agent_types: list[str]) -> Permissions:
    """Take tasks of ``agent_types`` for ``tenant_id`` and report on them; nothing else.

    The tenant of a report is the tenant of the subject, and a worker may publish only on
    its own tenant's report subject: the tenant comes from the credentials.
    """
    tasks = subjects.tasks_stream
    pulls: list[str] = []
    for agent_type in agent_types:
        consumer = worker_consumer(tenant_id, agent_type)
        pulls += [
            f"$JS.API.CONSUMER.MSG.NEXT.{tasks}.{consumer}",
            f"$JS.API.CONSUMER.INFO.{tasks}.{consumer}",
            f"$JS.ACK.{tasks}.{consumer}.>",
        ]
    return Permissions(
        publish=(subjects.reports(tenant_id), *pulls),
        subscribe=(f"{worker_inbox(tenant_id)}.>",),
    )
