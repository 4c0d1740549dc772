"""The event store: one eventsourcing Application, so all aggregates share one log."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, Mapper
from eventsourcing.persistence import EventStore as LibraryEventStore
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import get_topic
from prometheus_client import Counter, Histogram

from commands import log_position
from commands.errors import CausesRejected, ConcurrencyConflict
from commands.group_commit import GroupCommitter
from commands.limits import DEFAULT_MAX_EVENT_BYTES
from commands.limits import ENV_KEY as LIMIT_KEY
from commands.mapper import MsgspecMapper
from commands.pg_url import EXTRA_PARAMS_KEY, extra_params, split_url
from commands.recorder import CausalLinkError, DagRecorder
from commands.snapshots import (
    DEFAULT_INTERVAL,
    AggregateSnapshot,
    NotSnapshottable,
    SnapshotMapper,
    SnapshotRecorder,
    StaleSnapshot,
    crosses,
)
from commands.state_cache import DEFAULT_ENTRIES, StateCache, cacheable, copy_state
from domain.aggregate import Aggregate
from domain.errors import NotFound

_A = TypeVar("_A", bound=Aggregate)
APPENDS = Counter("quipu_appends_total", "Events appended to the event store")
APPEND_CONFLICTS = Counter("quipu_append_conflicts_total", "Appends refused by optimistic concurrency")
APPEND_SECONDS = Histogram("quipu_append_seconds", "Latency of one append transaction")
SNAPSHOTS = Counter("quipu_snapshots_total", "Aggregate snapshots written", ["outcome"])
log = structlog.get_logger(__name__)


def postgres_env(database_url: str, *, pool_size: int = 5, schema: str = "public") -> dict[str, str]:
    """Translate a ``postgresql://`` URL (multi-host too, ``commands.pg_url``) into the
    settings eventsourcing reads."""
    url, others = split_url(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.get("dbname") or "postgres",
        "POSTGRES_HOST": url.get("host") or "127.0.0.1",
        "POSTGRES_PORT": url.get("port") or "5432",
        "POSTGRES_USER": url.get("user") or "postgres",
        "POSTGRES_PASSWORD": url.get("password") or "",
        EXTRA_PARAMS_KEY: others,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_LOCK_TIMEOUT": "10",
        # Never: the library's insert function takes no table lock, so notification ids could
        # commit out of order and a tailing reader skip events (docs/decisions/0001-group-commit.md).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "",
        "APPLICATION_RECORDER_TOPIC": get_topic(DagRecorder),
        "CREATE_TABLE": "y",
    }


class EventStore(Application[UUID]):
    """Loads and saves aggregates; translates library errors into the application's own.

    Snapshots (see ``commands.snapshots``) are taken when a save reaches a multiple of
    ``snapshot_interval`` events of a stream (``QUIPU_SNAPSHOT_INTERVAL``, default 100;
    0 turns them off); every load starts from the latest one at or below its version.
    Loads of aggregates that opt in start from a cached state when one is near enough
    (``commands.state_cache``; ``QUIPU_STATE_CACHE_ENTRIES``, default 1024, 0 turns it off).
    """

    name = "Quipu"  # tables are named quipu_events, quipu_snapshots

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self.committer = GroupCommitter(self.recorder)
        entries = int(self.env.get("STATE_CACHE_ENTRIES") or DEFAULT_ENTRIES)
        self.states: StateCache | None = StateCache(entries) if entries > 0 else None
        # Loads that must not use snapshots (to compare, or after a stale one).
        self.plain_repository: Repository[UUID] = Repository(event_store=self.events)

    def construct_recorder(self) -> ApplicationRecorder:
        # The URL's other libpq parameters (target_session_attrs=read-write, to find the
        # primary after a fail-over) go on the library's pool before its first connection.
        others = extra_params(self.env.get(EXTRA_PARAMS_KEY) or "")
        if others and isinstance(self.factory, PostgresFactory):
            pool = self.factory.datastore.pool
            assert isinstance(pool.kwargs, dict)  # the library always passes a dict
            pool.kwargs.update(others)
        return super().construct_recorder()

    def construct_repository(self) -> Repository[UUID]:
        # Called by the library's __init__ once the event store exists.
        self.snapshot_interval = max(0, int(self.env.get("SNAPSHOT_INTERVAL") or DEFAULT_INTERVAL))
        if self.snapshot_interval and self.snapshots is None:
            self.snapshots = self.construct_snapshot_store()
        return super().construct_repository()

    def construct_snapshot_store(self) -> LibraryEventStore[UUID]:
        if isinstance(self.factory, PostgresFactory):
            recorder: Any = SnapshotRecorder(self.factory.datastore, events_table_name=f"{self.name.lower()}_snapshots")
            if self.factory.env_create_table():
                recorder.create_table()
        else:  # pragma: no cover - Quipu runs on Postgres; other stores keep the library's table
            recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return LibraryEventStore(mapper=SnapshotMapper(transcoder=None), recorder=recorder)  # type: ignore[arg-type]

    def close(self) -> None:
        self.committer.close()
        super().close()

    def construct_mapper(self) -> Mapper[UUID]:
        bound = int(self.env.get(LIMIT_KEY) or DEFAULT_MAX_EVENT_BYTES)
        return MsgspecMapper(transcoder=None, max_event_bytes=bound)

    def load(
        self,
        cls: type[_A],
        aggregate_id: UUID,
        tenant_id: str,
        *,
        version: int | None = None,
        snapshots: bool = True,
    ) -> _A:
        """The aggregate as of ``version`` (latest if None); 404 for another tenant's.
        ``snapshots=False`` replays every event (a snapshot is only ever a shortcut)."""
        states = self.states if snapshots and cacheable(cls) else None
        aggregate: Any = self._from_cache(states, aggregate_id, version) if states else None
        if aggregate is None:
            repository = self.repository if snapshots else self.plain_repository
            try:
                try:
                    aggregate = repository.get(aggregate_id, version=version)
                except StaleSnapshot as error:
                    log.warning("snapshot_ignored", stream_id=str(aggregate_id), reason=str(error))
                    aggregate = self.plain_repository.get(aggregate_id, version=version)
            except AggregateNotFoundError:
                raise NotFound(f"{cls.CATEGORY or cls.__name__} {aggregate_id} not found") from None
        if not isinstance(aggregate, cls) or aggregate.tenant_id != tenant_id:
            raise NotFound(f"{cls.CATEGORY or cls.__name__} {aggregate_id} not found")
        if states is not None:
            states.put(aggregate)  # a copy: the caller may run a command on this one
        return aggregate

    def _from_cache(self, states: StateCache, aggregate_id: UUID, version: int | None) -> Any:
        """The nearest cached state brought to ``version`` (the head if None) with the stored
        events after it; None when nothing cached is near enough to beat a snapshot."""
        cached = states.nearest(aggregate_id, version)
        if cached is None:
            return None
        if version is not None and version - cached.version > 2 * max(self.snapshot_interval, 50):
            return None
        aggregate: Any = copy_state(cached)
        if version is None or version > aggregate.version:
            for event in self.events.get(aggregate_id, gt=aggregate.version, lte=version):
                aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
        return aggregate

    def save_all(self, *aggregates: Aggregate) -> list[int]:
        """Append every pending event of ``aggregates`` in one transaction, or nothing.

        Concurrent callers are grouped into shared transactions (see group_commit); the
        all-or-nothing guarantee holds per call.
        """
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        if not events:
            return []
        stored = [self.mapper.to_stored_event(event) for event in events]
        started = time.perf_counter()
        try:
            ids = self.committer.append(stored)
        except CausalLinkError as error:
            raise CausesRejected(str(error)) from error
        except IntegrityError as error:
            # The (originator_id, version) key was taken by a concurrent writer.
            APPEND_CONFLICTS.inc()
            raise ConcurrencyConflict("the resource was changed concurrently; reload and retry") from error
        APPEND_SECONDS.observe(time.perf_counter() - started)
        APPENDS.inc(len(ids))
        log_position.reached(ids)  # the request's Quipu-Log-Position (api.log_position_header)
        self._snapshot_saved(events)
        return ids

    def _snapshot_saved(self, events: Sequence[Any]) -> None:
        """Snapshot each stream whose versions in this save reached a multiple of the
        interval, at the last version saved. The snapshot is rebuilt from the store (as a
        reader would rebuild it), never copied from the caller's object. A failure here
        costs only speed: the command has committed and is not affected."""
        if self.snapshots is None or not self.snapshot_interval:
            return
        spans: dict[UUID, tuple[int, int]] = {}
        for event in events:
            first, last = spans.get(event.originator_id, (event.originator_version, event.originator_version))
            spans[event.originator_id] = (min(first, event.originator_version), max(last, event.originator_version))
        for stream_id, (first, last) in spans.items():
            if crosses(first, last, self.snapshot_interval):
                self.take_stream_snapshot(stream_id, last)

    def take_stream_snapshot(self, stream_id: UUID, version: int) -> bool:
        """Write a snapshot of ``stream_id`` at ``version``; False when none was written."""
        if self.snapshots is None:
            return False
        try:
            aggregate = self.load_any(stream_id, version)
            self.snapshots.put([AggregateSnapshot(aggregate)])
        except NotSnapshottable as error:
            SNAPSHOTS.labels("not_snapshottable").inc()
            log.debug("snapshot_skipped", stream_id=str(stream_id), reason=str(error))
            return False
        except Exception:
            SNAPSHOTS.labels("failed").inc()
            log.warning("snapshot_failed", stream_id=str(stream_id), version=version, exc_info=True)
            return False
        SNAPSHOTS.labels("written").inc()
        return True

    def load_any(self, stream_id: UUID, version: int | None = None) -> Aggregate:
        """A stream as of ``version`` whatever its class, without the tenant check (internal)."""
        try:
            aggregate: Any = self.repository.get(stream_id, version=version)
        except StaleSnapshot:
            aggregate = self.plain_repository.get(stream_id, version=version)
        assert isinstance(aggregate, Aggregate)
        return aggregate

    def events_of(self, aggregate_id: UUID) -> Sequence[Any]:
        """Every recorded event of one stream, in order."""
        return list(self.events.get(aggregate_id))

    @property
    def datastore(self) -> Any:
        return self.recorder.datastore  # type: ignore[attr-defined]
