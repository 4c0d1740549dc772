"""Credentials for workers: a worker presents an API key to Quipu and gets NATS access to
its own tenant's tasks, and nothing else.

For each agent type asked for, Quipu makes sure the durable consumer of that tenant's tasks
exists (filtered to ``<prefix>.task.<tenant>.<agent_type>``), then mints a user whose
permissions reach only those consumers, the tenant's report subject and an inbox below the
tenant. Workers therefore never create consumers themselves: a filter they chose could
otherwise cover another tenant's tasks.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from bus import permissions
from bus.nats_auth import NatsAuthority
from bus.runtime import NatsEndpoint, connect_nats
from bus.streams import ensure_work_streams
from bus.subjects import Subjects

log = structlog.get_logger(__name__)
TASK_ACK_WAIT_SECONDS = 60.0  # the worker helper heartbeats (in-progress) well within this


@dataclass(frozen=True)
class WorkerGrant:
    tenant_id: str
    nats_url: str
    credentials: str | None  # .creds text; None when the bus runs without authentication
    inbox_prefix: str | None
    subject_prefix: str
    tasks_stream: str
    consumers: dict[str, str]  # agent type -> durable consumer name
    report_subject: str
    expires_at: datetime | None


class ConsumerMismatch(RuntimeError):
    """A consumer with the expected name exists but reads other subjects (never reused)."""


class WorkerAccess:
    def __init__(
        self,
        nats: NatsEndpoint,
        subjects: Subjects,
        authority: NatsAuthority | None,
        *,
        public_url: str | None = None,
        ttl_seconds: int = 3600,
    ) -> None:
        self._nats = nats
        self._subjects = subjects
        self._authority = authority
        self._public_url = public_url or nats.url
        self._ttl_seconds = ttl_seconds

    async def grant(self, tenant_id: str, agent_types: list[str], worker_name: str) -> WorkerGrant:
        consumers = {t: permissions.worker_consumer(tenant_id, t) for t in agent_types}
        await self._ensure_consumers(tenant_id, consumers)
        credentials = inbox = expires_at = None
        if self._authority is not None:
            rights = permissions.worker(self._subjects, tenant_id, agent_types)
            credentials = self._authority.mint(
                f"worker:{tenant_id}:{worker_name}", rights, ttl_seconds=self._ttl_seconds
            )
            inbox = permissions.worker_inbox(tenant_id)
            expires_at = datetime.now(UTC) + timedelta(seconds=self._ttl_seconds)
        log.info("worker_credentials_issued", tenant_id=tenant_id, agent_types=agent_types, worker=worker_name)
        return WorkerGrant(
            tenant_id=tenant_id,
            nats_url=self._public_url,
            credentials=credentials,
            inbox_prefix=inbox,
            subject_prefix=self._subjects.prefix,
            tasks_stream=self._subjects.tasks_stream,
            consumers=consumers,
            report_subject=self._subjects.reports(tenant_id),
            expires_at=expires_at,
        )

    async def _ensure_consumers(self, tenant_id: str, consumers: dict[str, str]) -> None:
        nc = await connect_nats(self._nats, allow_reconnect=False)
        try:
            js = nc.jetstream(timeout=5)
            await ensure_work_streams(js, self._subjects)
            stream = self._subjects.tasks_stream
            for agent_type, name in consumers.items():
                wanted = self._subjects.task(tenant_id, agent_type)
                try:
                    info = await js.consumer_info(stream, name)
                except NotFoundError:
                    await js.add_consumer(
                        stream,
                        ConsumerConfig(
                            durable_name=name,
                            filter_subject=wanted,
                            ack_policy=AckPolicy.EXPLICIT,
                            ack_wait=TASK_ACK_WAIT_SECONDS,
                        ),
                    )
                    continue
                if info.config.filter_subject != wanted:
                    raise ConsumerMismatch(f"consumer {name} reads {info.config.filter_subject}, not {wanted}")
        finally:
            with contextlib.suppress(Exception):
                await nc.close()
