"""Task dispatch: node_scheduled events become work for workers (no dual write).

The dispatcher is an event consumer like a projector, but its "read model" is the task
work-queue: for each scheduled task node it publishes a task on
``<prefix>.task.<tenant>.<agent_type>`` with ``Nats-Msg-Id`` = the scheduling event's id,
and acks the event only after JetStream acked the task. A crash in between re-publishes,
and JetStream drops the duplicate. For an approval node it publishes ``hitp_required``
on the notices stream the same way. Several dispatchers may share the durable consumer:
each event is handled by one of them, and order between tasks does not matter.

A message is only a hint (docs/decisions/0006-log-trust.md): the dispatcher looks the event up in the log at
the position the message names and dispatches the log's envelope; a message the log does
not confirm, or that names an event of another kind, is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from uuid import UUID

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row

from bus.runtime import NatsEndpoint, connect_nats, run_until_stopped
from bus.streams import ensure_event_stream, ensure_work_streams
from bus.subjects import DEFAULT_AGENT_TYPE, Subjects
from commands.log_trust import Claim, confirmed, readable_claims, reject
from domain.envelope import EventEnvelope
from domain.errors import NotFound
from domain.execution import Execution
from domain.hashing import state_hash
from quipu_client.wire import HitpRequired, Task

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode
DISPATCHED = Counter("quipu_tasks_dispatched_total", "Tasks and notices published for workers", ["type"])

# (tenant, execution id, version) -> the execution as of that event
LoadExecution = Callable[[str, UUID, int], Execution]


class Dispatcher:
    def __init__(
        self,
        nats_url: NatsEndpoint | str,
        subjects: Subjects,
        load: LoadExecution,
        *,
        database_url: str,
        batch_size: int = 64,
    ) -> None:
        self._nats_url = nats_url
        self._database_url = database_url
        self._subjects = subjects
        self._load = load
        self._batch_size = batch_size

    @property
    def durable_name(self) -> str:
        return f"{self._subjects.events_stream}_dispatcher"

    async def run(self, stop: asyncio.Event) -> None:
        await run_until_stopped(stop, self._run_once, "dispatcher_retrying")

    async def _run_once(self, stop: asyncio.Event) -> None:
        async with await AsyncConnection.connect(
            self._database_url, autocommit=True, row_factory=dict_row, application_name="quipu-dispatcher"
        ) as conn:
            await self._consume(conn, stop)

    async def _consume(self, conn: AsyncConnection[DictRow], stop: asyncio.Event) -> None:
        nc = await connect_nats(self._nats_url)
        try:
            js = nc.jetstream(timeout=5)
            await ensure_event_stream(js, self._subjects)
            await ensure_work_streams(js, self._subjects)
            sub = await js.pull_subscribe(
                self._subjects.node_scheduled_events,
                durable=self.durable_name,
                stream=self._subjects.events_stream,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.ALL,
                    max_ack_pending=self._batch_size * 8,
                    ack_wait=30,
                ),
            )
            log.info("dispatcher_started", durable=self.durable_name)
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(self._batch_size, timeout=0.5)
                except (NatsTimeout, TimeoutError):  # nats-py raises either on an empty fetch
                    continue
                for envelope in await self._from_log(conn, msgs):
                    await self._dispatch(js, envelope)
                for msg in msgs:  # only after every confirmed one went out: a crash re-sends, dedup drops
                    await msg.ack()
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _from_log(self, conn: AsyncConnection[DictRow], msgs: list[Msg]) -> list[EventEnvelope]:
        """The log's envelopes for the messages it confirms (one query per batch)."""
        claims = readable_claims("dispatcher", msgs)
        envelopes = await confirmed(conn, "dispatcher", claims) if claims else []
        out: list[EventEnvelope] = []
        for envelope in envelopes:
            if envelope.kind != "execution.node_scheduled":  # a real event, but not one to dispatch
                reject("dispatcher", "unexpected_kind", Claim(envelope.event_id, envelope.notification_id))
            else:
                out.append(envelope)
        return out

    async def _dispatch(self, js: object, envelope: EventEnvelope) -> None:
        node_type = envelope.payload.get("node_type", "task")
        if node_type not in ("task", "approval") or envelope.payload.get("callback_id"):
            return  # a callback node goes to its registered URL instead (bus.deliverer)
        try:
            execution = await asyncio.to_thread(self._load, envelope.tenant_id, envelope.stream_id, envelope.version)
        except NotFound:
            log.warning("dispatch_execution_missing", event_id=str(envelope.event_id))
            return
        if node_type == "task":
            subject, body = self._task(envelope, execution)
        else:
            subject, body = self._notice(envelope, execution)
        await js.publish(subject, body, headers={"Nats-Msg-Id": str(envelope.event_id)})  # type: ignore[attr-defined]
        DISPATCHED.labels(node_type).inc()
        log.debug("task_dispatched", subject=subject, event_id=str(envelope.event_id))

    def _task(self, envelope: EventEnvelope, execution: Execution) -> tuple[str, bytes]:
        node = execution.node(envelope.payload["node_id"])
        task = Task(
            task_id=envelope.event_id,
            tenant_id=envelope.tenant_id,
            execution_id=execution.id,
            workflow_id=execution.workflow_id,
            node_id=node.id,
            node_name=node.name,
            agent_type=node.agent_type or DEFAULT_AGENT_TYPE,
            attempt=int(envelope.payload.get("attempt", 1)),
            input=execution.state,
            config=node.config,
            scheduled_at=envelope.occurred_at,
            deadline=execution.node_deadlines.get(node.id),
        )
        return self._subjects.task(envelope.tenant_id, node.agent_type), _encode(task)

    def _notice(self, envelope: EventEnvelope, execution: Execution) -> tuple[str, bytes]:
        record = execution.approvals[envelope.event_id]
        notice = HitpRequired(
            tenant_id=envelope.tenant_id,
            execution_id=execution.id,
            approval_id=envelope.event_id,
            node_id=record.node_id,
            prompt=record.prompt,
            context=execution.state,
            state_hash=state_hash(execution.state),
            timeout_seconds=record.timeout_seconds,
        )
        return self._subjects.notice(envelope.tenant_id, "hitp_required"), _encode(notice)
