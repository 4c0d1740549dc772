"""The event store: one eventsourcing Application, so all aggregates share one log."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper
from eventsourcing.utils import get_topic
from prometheus_client import Counter, Histogram

from commands.errors import CausesRejected, ConcurrencyConflict
from commands.group_commit import GroupCommitter
from commands.mapper import MsgspecMapper
from commands.recorder import CausalLinkError, DagRecorder
from domain.aggregate import Aggregate
from domain.errors import NotFound

_A = TypeVar("_A", bound=Aggregate)
APPENDS = Counter("quipu_appends_total", "Events appended to the event store")
APPEND_CONFLICTS = Counter("quipu_append_conflicts_total", "Appends refused by optimistic concurrency")
APPEND_SECONDS = Histogram("quipu_append_seconds", "Latency of one append transaction")


def postgres_env(database_url: str, *, pool_size: int = 5, schema: str = "public") -> dict[str, str]:
    """Translate a ``postgresql://`` URL into the settings eventsourcing reads."""
    url = urlparse(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": (url.path or "/postgres").lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_LOCK_TIMEOUT": "10",
        # Never: with DB functions a tailing reader can skip events (see the issue).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "",
        "APPLICATION_RECORDER_TOPIC": get_topic(DagRecorder),
        "CREATE_TABLE": "y",
    }


class EventStore(Application[UUID]):
    """Loads and saves aggregates; translates library errors into the application's own."""

    name = "Quipu"  # tables are named quipu_events, quipu_snapshots

    def __init__(self, env: Any = None) -> None:
        super().__init__(env)
        self.committer = GroupCommitter(self.recorder)

    def close(self) -> None:
        self.committer.close()
        super().close()

    def construct_mapper(self) -> Mapper[UUID]:
        return MsgspecMapper(transcoder=None)  # type: ignore[arg-type]

    def load(self, cls: type[_A], aggregate_id: UUID, tenant_id: str, *, version: int | None = None) -> _A:
        """The aggregate as of ``version`` (latest if None); 404 for another tenant's."""
        try:
            aggregate: Any = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{cls.CATEGORY or cls.__name__} {aggregate_id} not found") from None
        if not isinstance(aggregate, cls) or aggregate.tenant_id != tenant_id:
            raise NotFound(f"{cls.CATEGORY or cls.__name__} {aggregate_id} not found")
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
        return ids

    def events_of(self, aggregate_id: UUID) -> Sequence[Any]:
        """Every recorded event of one stream, in order."""
        return list(self.events.get(aggregate_id))

    @property
    def datastore(self) -> Any:
        return self.recorder.datastore  # type: ignore[attr-defined]
