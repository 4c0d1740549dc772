"""What the API needs from the outside, handed over by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import msgspec

from commands.access import AccessService
from commands.agents import AgentService
from commands.callbacks import CallbackService
from commands.checkpoint_compare import CheckpointComparer
from commands.executions import ExecutionService
from commands.live_feed import LiveFeeds, LiveHints
from commands.locks import LockService
from commands.read_pool import ReadPool
from commands.store import EventStore
from commands.summarization import SummarizationService
from commands.tenants import TenantService
from commands.workflows import WorkflowService
from projections.execution_reads import ExecutionReads
from projections.message_inbox import InboxHints
from projections.search_service import MemorySearch


class BusUnavailable(Exception):
    """NATS cannot be reached right now (the API answers 503 with Retry-After)."""


class WorkerCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """What a worker needs to take its tenant's tasks: where NATS is, who to be there, and
    which consumers and subjects its credentials reach."""

    tenant_id: str
    nats_url: str
    credentials: str | None  # a .creds file's text (user JWT and nkey seed); None: no NATS auth
    inbox_prefix: str | None
    subject_prefix: str
    tasks_stream: str
    consumers: dict[str, str]
    report_subject: str
    expires_at: datetime | None


# (tenant, agent types, worker name) -> credentials
WorkerCredentialsPort = Callable[[str, list[str], str], Awaitable[WorkerCredentials]]


@dataclass
class ApiContext:
    store: EventStore
    workflows: WorkflowService
    access: AccessService
    executions: ExecutionService
    pool: ReadPool  # async read connections: forensics and read models
    nats_ready: Callable[[], Awaitable[bool]]
    search: MemorySearch
    execution_reads: ExecutionReads  # checkpoints, timeline, metrics
    compare: CheckpointComparer
    max_body_bytes: int = 1_048_576
    rate_limit_per_minute: int = 6000
    live: LiveHints | None = None  # None: live updates poll the Postgres log instead of following NATS
    inbox: InboxHints | None = None  # None: agents' inbox feeds poll the messages read model
    worker_credentials: WorkerCredentialsPort | None = None  # None: this API hands out no NATS access
    agents: AgentService | None = None  # set by the composition root (quipu.wiring)
    locks: LockService | None = None
    callbacks: CallbackService | None = None  # the callback registry (quipu.wiring sets it)
    # Read connections of the list queries (QUIPU_READ_DATABASE_URL, e.g. a hot standby);
    # None: ``pool``. See docs/architecture.md, Postgres fail-over.
    reads: ReadPool | None = None
    min_position_wait_ms: int = 5000  # how long a query with ?min_position waits (api.read_freshness)

    @property
    def read_models(self) -> ReadPool:
        """Where list queries read their read models: the replica when one is configured."""
        return self.reads if self.reads is not None else self.pool

    @property
    def tenants(self) -> TenantService:
        """The tenants' service: the one authentication asks, so a change is seen at once."""
        return self.access.tenants

    @property
    def summarization(self) -> SummarizationService:
        """Stateless over the event store: building one per use is free."""
        return SummarizationService(self.store)

    @property
    def live_feeds(self) -> LiveFeeds:
        """Live updates (SSE, WebSocket) of executions, following ``live`` where there is one."""
        return LiveFeeds(self.pool, self.store, self.live)
