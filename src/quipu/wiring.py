"""The composition root: the only module that knows how the parts fit together."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from nats.aio.client import Client as NATS

from api.context import ApiContext, BusUnavailable, WorkerCredentials, WorkerCredentialsPort
from bus import permissions
from bus.agent_messages import JetStreamInboxHints
from bus.consumer import Projector
from bus.deliverer import Deliverer
from bus.dispatcher import Dispatcher
from bus.live_hints import JetStreamHints
from bus.nats_auth import NatsAuthority, Permissions
from bus.relay import Relay
from bus.reports import ReportResponder
from bus.runtime import RETRYABLE, NatsEndpoint, connect_nats, endpoint
from bus.streams import StreamSettings, use_stream_settings
from bus.subjects import Subjects
from bus.summarizer import Summarizer
from bus.timers import TimerRunner
from bus.worker_access import WorkerAccess
from commands.access import AccessService
from commands.agents import AgentService
from commands.callbacks import CallbackService
from commands.checkpoint_compare import CheckpointComparer
from commands.deliveries import DeliveryService
from commands.executions import ExecutionService
from commands.limits import DEFAULT_MAX_EVENT_BYTES
from commands.limits import ENV_KEY as LIMIT_KEY
from commands.locks import LockService
from commands.log_queries import ExecutionLog, event_position
from commands.read_pool import new_read_pool
from commands.store import EventStore, postgres_env
from commands.summarization import SummarizationService
from commands.summarization_firing import TriggerFiring
from commands.workflows import WorkflowService
from domain.delivery import DeliveryPolicy
from domain.execution import Execution
from domain.timers import TimerKind
from projections.applier import ensure_schema
from projections.coordination import held_lock_streams
from projections.execution_reads import ExecutionReads
from projections.registry import PROJECTIONS, projection
from projections.search_service import MemorySearch
from quipu.config import Settings
from quipu.secret_key import load_server_key


def coordination_services(store: EventStore, offline_after: float = 30.0) -> tuple[AgentService, LockService]:
    """Agents and locks over one store: an agent that goes offline loses its locks (the
    coordination read model says which lock streams to look at)."""

    def held_by(tenant_id: str, agent_id: UUID) -> list[UUID]:
        with store.datastore.get_connection() as conn:
            return held_lock_streams(conn, tenant_id, agent_id)

    locks = LockService(store, held_by=held_by)
    agents = AgentService(store, offline_after=timedelta(seconds=offline_after), offline_consequences=locks.revoke_for)
    return agents, locks


def build_store(
    database_url: str, pool_size: int = 10, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> EventStore:
    """Connects, and creates the write-side tables on first use."""
    return EventStore(env={**postgres_env(database_url, pool_size=pool_size), LIMIT_KEY: str(max_event_bytes)})


@dataclass
class Wiring:
    database_url: str
    nats_url: NatsEndpoint | str  # with the credentials this process connects with, if any
    subjects: Subjects
    pool_size: int = 10
    max_body_bytes: int = 1 << 20
    rate_limit_per_minute: int = 6000
    agent_types: frozenset[str] | None = None  # the registry of agent types, when configured
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    # A signing key of the NATS account: each role then connects as a user of its own with
    # only the permissions it needs, and the API can mint workers' credentials.
    nats_authority: NatsAuthority | None = None
    nats_public_url: str | None = None  # the NATS URL handed to workers (default: ours)
    worker_credentials_ttl: int = 3600
    agent_offline_after: float = 30.0  # seconds without a heartbeat before an agent is offline
    # Callback signing secrets derive from this key (quipu.secret_key). The default, a key of
    # this process only, serves in-process tests; from_settings loads the deployment's.
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    callback_policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    streams: StreamSettings = field(default_factory=StreamSettings)  # replicas and event stream limits
    read_database_url: str | None = None  # the list queries' read models (None: database_url)
    min_position_wait_ms: int = 5000

    def nats_as(self, rights: Permissions, name: str) -> NatsEndpoint:
        """The endpoint a role connects to: its own minted user when a signing key is
        configured, otherwise the process's credentials (or none)."""
        where = endpoint(self.nats_url)
        if self.nats_authority is None:
            return where
        return where.with_credentials(self.nats_authority.mint(f"quipu-{name}", rights))

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        database_url: str,
        nats_url: NatsEndpoint | str,
        nats_authority: NatsAuthority | None = None,
    ) -> Wiring:
        if nats_authority is None and settings.nats_signing_key_file is not None:
            if not settings.nats_account:
                raise ValueError("QUIPU_NATS_SIGNING_KEY_FILE needs QUIPU_NATS_ACCOUNT (the account's public key)")
            nats_authority = NatsAuthority.from_files(settings.nats_account, settings.nats_signing_key_file)
        streams = StreamSettings(settings.nats_replicas, settings.nats_events_max_bytes, settings.nats_events_max_age)
        use_stream_settings(streams)  # every role of this process creates streams with them
        if isinstance(nats_url, str) and settings.nats_creds is not None:
            nats_url = NatsEndpoint(nats_url, settings.nats_creds.read_text())
        return cls(
            database_url,
            nats_url,
            Subjects(settings.subject_prefix),
            settings.pool_size,
            settings.max_body_bytes,
            settings.rate_limit_per_minute,
            settings.agent_types,
            max_event_bytes=settings.max_event_bytes,
            nats_authority=nats_authority,
            nats_public_url=settings.nats_public_url,
            worker_credentials_ttl=settings.worker_credentials_ttl,
            agent_offline_after=settings.agent_offline_after,
            secret_key=load_server_key(settings.data_dir, settings.secret_key),
            callback_policy=DeliveryPolicy(
                max_attempts=settings.callback_max_attempts,
                timeout_seconds=settings.callback_timeout,
                base_seconds=settings.callback_retry_base,
            ),
            streams=streams,
            read_database_url=settings.read_database_url,
            min_position_wait_ms=settings.min_position_wait_ms,
        )

    @contextlib.asynccontextmanager
    async def api_context(self) -> AsyncIterator[ApiContext]:
        store = await asyncio.to_thread(
            lambda: build_store(self.database_url, self.pool_size, max_event_bytes=self.max_event_bytes)
        )
        pool = new_read_pool(self.database_url, self.pool_size)
        await pool.open(wait=True, timeout=30)
        reads = None if self.read_database_url is None else new_read_pool(self.read_database_url, self.pool_size)
        if reads is not None:
            await reads.open(wait=True, timeout=30)
        async with pool.connection() as conn:
            # Read models exist before the first query, even if no projector ran yet.
            for name in sorted(PROJECTIONS):
                await ensure_schema(conn, projection(name))
        # Readiness reports NATS; the API still serves commands while NATS is down, and
        # connects lazily if NATS was not there at start.
        api_nats = self.nats_as(permissions.api(self.subjects), "api")
        clients: list[NATS] = []
        with contextlib.suppress(*RETRYABLE):
            clients.append(await connect_nats(api_nats))

        async def nats_ready() -> bool:
            if not clients:
                with contextlib.suppress(*RETRYABLE):
                    clients.append(await asyncio.wait_for(connect_nats(api_nats), 3))
            return bool(clients) and clients[0].is_connected

        async def live_client() -> NATS | None:
            # Live subscribers share the API's client; None sends them to the log instead.
            return clients[0] if await nats_ready() else None

        def live_subjects(tenant_id: str) -> list[str]:
            return [self.subjects.event(tenant_id, "execution.>"), self.subjects.event(tenant_id, "telemetry.>")]

        callbacks = CallbackService(store, self.secret_key)
        workflows = WorkflowService(store, agent_types=self.agent_types, active_callbacks=callbacks.active_among)
        executions = ExecutionService(store, workflows)
        access = WorkerAccess(
            api_nats,
            self.subjects,
            self.nats_authority,
            public_url=self.nats_public_url,
            ttl_seconds=self.worker_credentials_ttl,
        )
        agents, locks = coordination_services(store, self.agent_offline_after)
        try:
            yield ApiContext(
                store=store,
                workflows=workflows,
                executions=executions,
                access=AccessService(store),
                pool=pool,
                nats_ready=nats_ready,
                search=MemorySearch(pool, event_position),
                execution_reads=ExecutionReads(pool, ExecutionLog()),
                compare=CheckpointComparer(pool, executions),
                max_body_bytes=self.max_body_bytes,
                rate_limit_per_minute=self.rate_limit_per_minute,
                live=JetStreamHints(live_client, self.subjects.events_stream, live_subjects),
                inbox=JetStreamInboxHints(live_client, self.subjects),
                worker_credentials=worker_credentials_port(access),
                agents=agents,
                locks=locks,
                callbacks=callbacks,
                reads=reads,
                min_position_wait_ms=self.min_position_wait_ms,
            )
        finally:
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()
            await pool.close()
            if reads is not None:
                await reads.close()
            await asyncio.to_thread(store.close)

    @contextlib.asynccontextmanager
    async def orchestration(
        self, *, timers: bool = True
    ) -> AsyncIterator[list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]]]:
        """The parts that move executions along without a client asking: task dispatch
        (events -> worker queue) and durable timers (timeouts, retries). They share a
        small event store of their own."""
        store = await asyncio.to_thread(lambda: build_store(self.database_url, 2, max_event_bytes=self.max_event_bytes))

        def load(tenant_id: str, execution_id: UUID, version: int) -> Execution:
            return store.load(Execution, execution_id, tenant_id, version=version)

        executions = ExecutionService(store, WorkflowService(store, agent_types=self.agent_types))
        agents, locks = coordination_services(store, self.agent_offline_after)

        def fire(tenant_id: str, stream_id: UUID, kind: TimerKind, node_id: str | None, attempt: int) -> bool:
            # One runner for every durable timer: agents' liveness and grants' expiry too.
            if kind is TimerKind.AGENT_OFFLINE:
                return agents.go_offline(tenant_id, stream_id)
            if kind is TimerKind.LOCK_EXPIRY:
                return locks.expire(tenant_id, stream_id)
            return executions.fire_timer(tenant_id, stream_id, kind, node_id, attempt)

        runner = TimerRunner(self.database_url, fire, leader_key=self.subjects.prefix)
        summarizer = Summarizer(
            self.nats_as(permissions.dispatcher(self.subjects), "summarizer"),
            self.subjects,
            SummarizationService(store),
            TriggerFiring(store),
            database_url=self.database_url,
        )
        deliverer = Deliverer(
            self.database_url,
            DeliveryService(store, self.callback_policy),
            CallbackService(store, self.secret_key),
            leader_key=self.subjects.prefix,
        )
        try:
            yield [
                Dispatcher(
                    self.nats_as(permissions.dispatcher(self.subjects), "dispatcher"),
                    self.subjects,
                    load,
                    database_url=self.database_url,
                ).run,
                summarizer.run,  # summarization triggers fired from the log, and their tasks
                deliverer.run,  # callback nodes POSTed to their registered URLs, driven from the log
                *([runner.run] if timers else []),
            ]
        finally:
            await asyncio.to_thread(store.close)

    def report_responder(
        self, executions: ExecutionService, summaries: SummarizationService | None = None
    ) -> ReportResponder:
        """Worker reports over NATS; runs beside the API, which owns the command side.
        With ``summaries``, reports on summarization tasks are answered too."""
        nats = self.nats_as(permissions.api(self.subjects), "reports")
        return ReportResponder(nats, self.subjects, executions, summaries)

    def relay(self) -> Relay:
        nats = self.nats_as(permissions.relay(self.subjects), "relay")
        return Relay(self.database_url, nats, self.subjects, streams=self.streams)

    def projectors(self, names: list[str] | None = None) -> list[Projector]:
        nats = self.nats_as(permissions.projector(self.subjects), "projector")
        return [
            Projector(projection(n), self.database_url, nats, self.subjects) for n in (names or sorted(PROJECTIONS))
        ]


def worker_credentials_port(access: WorkerAccess) -> WorkerCredentialsPort:
    """The API's view of worker access: its own types, and 503 while NATS is unreachable."""

    async def issue(tenant_id: str, agent_types: list[str], worker_name: str) -> WorkerCredentials:
        try:
            grant = await access.grant(tenant_id, agent_types, worker_name)
        except RETRYABLE as error:
            raise BusUnavailable(str(error) or type(error).__name__) from error
        return WorkerCredentials(**vars(grant))

    return issue
