"""The summarizer role: summarization triggers fired from the log, and requests handed to workers.

Two jobs, both event consumers like the dispatcher (no dual write, every message checked
against the log, docs/decisions/0006-log-trust.md):

- each ``scope.turn_appended``, ``scope.closed`` and ``note.created`` event is decided by
  ``commands.summarization_firing``, which records the requests it fires (once per
  crossing, however often the event is delivered);
- each ``summarization_request.created`` event becomes a ``Task`` on
  ``<prefix>.task.<tenant>.<agent_type>`` with ``Nats-Msg-Id`` = the event's id, so a crash
  between publishing and acking re-publishes and JetStream drops the duplicate.

A summarization task is an ordinary task, so any worker (``quipu_client.worker``) can take
it: ``execution_id`` carries the request's id, ``workflow_id`` the policy's, ``node_id`` is
``summarization``, and ``input`` holds the sources' text. The worker's heartbeats and its
result travel as reports like any other (``bus.reports`` routes them here by that node id).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
import structlog
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from bus.runtime import NatsEndpoint, connect_nats, run_until_stopped
from bus.streams import ensure_event_stream, ensure_work_streams
from bus.subjects import Subjects
from commands.log_trust import confirmed, readable_claims
from commands.summarization import SummarizationService
from commands.summarization_firing import FIRING_KINDS, TriggerFiring
from domain.envelope import EventEnvelope
from domain.summarization_request import SummarizationRequest
from quipu_client.wire import Task

log = structlog.get_logger(__name__)
_encode = msgspec.json.Encoder().encode
SUMMARIZATION_NODE = "summarization"  # the node id of every summarization task and report
REQUESTED = "summarization_request.created"
SUMMARIES = Counter("quipu_summarization_events_total", "Events the summarizer handled", ["kind"])


class Summarizer:
    def __init__(
        self,
        nats_url: NatsEndpoint | str,
        subjects: Subjects,
        service: SummarizationService,
        firing: TriggerFiring,
        *,
        database_url: str,
        batch_size: int = 64,
    ) -> None:
        self._nats_url = nats_url
        self._subjects = subjects
        self._service = service
        self._firing = firing
        self._database_url = database_url
        self._batch_size = batch_size

    def durable(self, kind: str) -> str:
        return f"{self._subjects.events_stream}_summarizer_{kind.replace('.', '_')}"

    async def run(self, stop: asyncio.Event) -> None:
        await run_until_stopped(stop, self._run_once, "summarizer_retrying")

    async def _run_once(self, stop: asyncio.Event) -> None:
        nc = await connect_nats(self._nats_url)
        try:
            js = nc.jetstream(timeout=5)
            await ensure_event_stream(js, self._subjects)
            await ensure_work_streams(js, self._subjects)
            loops = [self._consume(js, kind, stop) for kind in (*FIRING_KINDS, REQUESTED)]
            log.info("summarizer_started")
            await asyncio.gather(*loops)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _consume(self, js: Any, kind: str, stop: asyncio.Event) -> None:
        sub = await js.pull_subscribe(
            self._subjects.event("*", kind),
            durable=self.durable(kind),
            stream=self._subjects.events_stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                max_ack_pending=self._batch_size * 8,
                ack_wait=60,
            ),
        )
        async with await AsyncConnection.connect(
            self._database_url, autocommit=True, row_factory=dict_row, application_name="quipu-summarizer"
        ) as conn:
            while not stop.is_set():
                try:
                    msgs = await sub.fetch(self._batch_size, timeout=0.5)
                except (NatsTimeout, TimeoutError):  # nats-py raises either on an empty fetch
                    continue
                claims = readable_claims("summarizer", msgs)
                for envelope in await confirmed(conn, "summarizer", claims) if claims else []:
                    if envelope.kind == kind:  # a real event of another kind moves nothing
                        await self._handle(js, envelope)
                for msg in msgs:  # only after each was handled: a crash redelivers, and deciding is idempotent
                    await msg.ack()

    async def _handle(self, js: Any, envelope: EventEnvelope) -> None:
        SUMMARIES.labels(envelope.kind).inc()
        if envelope.kind != REQUESTED:
            await asyncio.to_thread(self._firing.decide, envelope)
            return
        request, material = await asyncio.to_thread(self._material, envelope)
        task = Task(
            task_id=envelope.event_id,
            tenant_id=envelope.tenant_id,
            execution_id=request.id,
            workflow_id=request.summarization_policy_id,
            node_id=SUMMARIZATION_NODE,
            node_name=SUMMARIZATION_NODE,
            agent_type=request.agent_type,
            attempt=1,
            input={
                "summarization_request_id": str(request.id),
                "summarization_policy_id": str(request.summarization_policy_id),
                "trajectory_id": str(request.trajectory_id) if request.trajectory_id else None,
                "scope_id": str(request.scope_id) if request.scope_id else None,
                "source_level": request.source_level,
                "target_level": request.target_level,
                "trigger": request.trigger,
                "sources": material,
            },
            config={"max_sources": request.max_sources, "create_edges": request.create_edges},
            scheduled_at=envelope.occurred_at,
        )
        subject = self._subjects.task(envelope.tenant_id, request.agent_type)
        await js.publish(subject, _encode(task), headers={"Nats-Msg-Id": str(envelope.event_id)})
        log.info("summarization_dispatched", subject=subject, request_id=str(request.id))

    def _material(self, envelope: EventEnvelope) -> tuple[SummarizationRequest, list[dict[str, Any]]]:
        request = self._service.get_request(envelope.tenant_id, envelope.stream_id)
        return request, self._service.source_material(request)
