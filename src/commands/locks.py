"""Application service for locks: acquire (optionally waiting), read, extend, release, and
the two ways a grant ends without its holder: the expiry timer and the holder going offline.

Every command on a resource loads its one lock stream (``domain.lock``), decides, and
saves; a save that lost the race to a concurrent command on the same resource is decided
again on the fresh state, so the aggregate's rules always judge the latest grants. The
holder must be a registered agent of the tenant whose liveness deadline has not passed.
A ``lock_id`` is the id of the grant's ``lock.acquired`` event; the event DAG says which
stream it belongs to, so reads and writes of a grant see the log, never a read model.
A grant whose holder is gone (past its liveness deadline) never blocks a live agent: the
acquire that meets it revokes it first, whether or not the liveness timer has done so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from commands.causes import check_causes
from commands.errors import ConcurrencyConflict
from commands.store import EventStore
from domain.agent import Agent
from domain.aggregate import Aggregate, CommandContext
from domain.errors import Conflict, NotFound
from domain.lock import Grant, Lock, LockMode, LockTaken, lock_stream_id

# Every writer of a hot resource gets through: each round lets one win.
ATTEMPTS = 64
# How long an acquire may wait for a taken resource at most (``wait_ms``).
MAX_WAIT_MS = 60_000
_POLL_SECONDS = 0.02
_MAX_POLL_SECONDS = 0.25

# (tenant, agent) -> the lock streams where the agent may hold grants (a read model; the
# streams themselves decide what is still held).
HeldBy = Callable[[str, UUID], list[UUID]]


def _now() -> datetime:
    return datetime.now(UTC)


def _nothing_held(_tenant_id: str, _agent_id: UUID) -> list[UUID]:
    return []


@dataclass(frozen=True)
class AcquireInput:
    holder_agent_id: UUID
    resource_type: str
    resource_id: UUID
    mode: LockMode
    timeout_ms: int
    wait_ms: int = 0


class LockService:
    def __init__(self, store: EventStore, *, held_by: HeldBy = _nothing_held) -> None:
        self._store = store
        self._held_by = held_by

    def acquire(self, ctx: CommandContext, data: AcquireInput) -> tuple[Lock, Grant]:
        """Grant the resource, or raise ``LockTaken`` naming the holders. With ``wait_ms``,
        keep trying until the resource frees up or the wait is over."""
        checked = check_causes(self._store, ctx.tenant_id, ctx.caused_by)
        give_up = time.monotonic() + min(data.wait_ms, MAX_WAIT_MS) / 1000
        pause = _POLL_SECONDS
        while True:
            try:
                return self._acquire_once(ctx, checked, data)
            except LockTaken as taken:
                left = give_up - time.monotonic()
                if left <= 0:
                    raise
                # Sleep until the earliest holder's expiry, a poll interval or the end of
                # the wait, whichever comes first: a release ends the wait early.
                until_expiry = min(g.expires_at for g in taken.holders) - _now()
                time.sleep(max(0.001, min(pause, left, until_expiry.total_seconds())))
                pause = min(pause * 2, _MAX_POLL_SECONDS)

    def _acquire_once(self, ctx: CommandContext, causes: tuple[UUID, ...], data: AcquireInput) -> tuple[Lock, Grant]:
        stream_id = lock_stream_id(ctx.tenant_id, data.resource_type, data.resource_id)
        timeout = timedelta(milliseconds=data.timeout_ms)
        for attempt in range(1, ATTEMPTS + 1):
            now = _now()
            holder = self._live_agent(ctx.tenant_id, data.holder_agent_id, now)
            assert holder.last_event_id is not None
            # The grant names the holder's latest event: the lock is a step of its story.
            decide = CommandContext(ctx.tenant_id, ctx.actor, (holder.last_event_id, *causes))
            try:
                lock = self._store.load(Lock, stream_id, ctx.tenant_id)
            except NotFound:
                lock = Lock.first_acquire(
                    decide,
                    resource_type=data.resource_type,
                    resource_id=data.resource_id,
                    holder_agent_id=data.holder_agent_id,
                    mode=data.mode,
                    now=now,
                    timeout=timeout,
                )
                assert lock.last_event_id is not None
                grant = lock.grants[lock.last_event_id]
            else:
                try:
                    grant = lock.acquire(
                        decide, holder_agent_id=data.holder_agent_id, mode=data.mode, now=now, timeout=timeout
                    )
                except LockTaken as taken:
                    if not self._revoke_gone(lock, taken.holders, ctx, now):
                        raise
                    grant = lock.acquire(
                        decide, holder_agent_id=data.holder_agent_id, mode=data.mode, now=now, timeout=timeout
                    )
            try:
                self._store.save_all(lock)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            return lock, grant
        raise AssertionError("unreachable")

    def get(self, tenant_id: str, lock_id: UUID) -> tuple[Lock, Grant]:
        """A grant that still holds (404 once it is released, expired or revoked)."""
        lock = self._store.load(Lock, self._stream_of(tenant_id, lock_id), tenant_id)
        grant = lock.grants.get(lock_id)
        if grant is None or not grant.holds_at(_now()):
            raise NotFound(f"lock {lock_id} is no longer held")
        return lock, grant

    def extend(
        self, ctx: CommandContext, lock_id: UUID, *, additional_ms: int, agent_id: UUID | None = None
    ) -> tuple[Lock, Grant]:
        """Push the grant's expiry (409 once it is over, or for an agent that is not the holder)."""
        additional = timedelta(milliseconds=additional_ms)
        return self._on_grant(
            ctx,
            lock_id,
            lambda lock, c, now: lock.extend(c, lock_id, additional=additional, now=now, agent_id=agent_id),
        )

    def release(self, ctx: CommandContext, lock_id: UUID, *, releasing_agent_id: UUID) -> tuple[Lock, Grant]:
        """The holder lets go (409 for anyone else, or a grant that is already over)."""
        return self._on_grant(
            ctx, lock_id, lambda lock, c, now: lock.release(c, lock_id, releasing_agent_id=releasing_agent_id, now=now)
        )

    def expire(self, tenant_id: str, stream_id: UUID) -> bool:
        """The expiry timer fired: record every grant of the stream past its expiry. False
        when none is (extended, released, or already recorded)."""
        ctx = CommandContext(tenant_id, "system:timer")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                lock = self._store.load(Lock, stream_id, tenant_id)
            except NotFound:
                return False
            if not lock.expire(ctx, now=_now()):
                return False
            try:
                self._store.save_all(lock)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            return True
        raise AssertionError("unreachable")

    def revoke_for(self, tenant_id: str, agent: Agent, ctx: CommandContext, now: datetime) -> list[Aggregate]:
        """The agent went offline or was unregistered: end its grants. Returns the lock
        streams that changed, for the caller to save with the agent's event."""
        reason = "holder_unregistered" if agent.deleted else "holder_offline"
        changed: list[Aggregate] = []
        for stream_id in self._held_by(tenant_id, agent.id):
            try:
                lock = self._store.load(Lock, stream_id, tenant_id)
            except NotFound:
                continue
            if lock.revoke_holder(ctx, agent.id, reason=reason, now=now):
                changed.append(lock)
        return changed

    def _on_grant(
        self, ctx: CommandContext, lock_id: UUID, change: Callable[[Lock, CommandContext, datetime], Grant]
    ) -> tuple[Lock, Grant]:
        checked = CommandContext(ctx.tenant_id, ctx.actor, check_causes(self._store, ctx.tenant_id, ctx.caused_by))
        stream_id = self._stream_of(ctx.tenant_id, lock_id)
        for attempt in range(1, ATTEMPTS + 1):
            lock = self._store.load(Lock, stream_id, ctx.tenant_id)
            grant = change(lock, checked, _now())
            try:
                self._store.save_all(lock)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            return lock, grant
        raise AssertionError("unreachable")

    def _revoke_gone(self, lock: Lock, holders: list[Grant], ctx: CommandContext, now: datetime) -> bool:
        """Revoke the blocking grants of holders that are gone (past their liveness deadline,
        offline or unregistered) even if their liveness timer has not revoked them yet: a
        grant taken while its agent was being marked offline is invisible to the read model
        the timer asks, and a gone agent must not block the living. True if any was revoked."""
        revoked = False
        for agent_id in dict.fromkeys(g.holder_agent_id for g in holders):
            try:
                agent = self._store.load(Agent, agent_id, ctx.tenant_id)
            except NotFound:
                continue
            if agent.is_alive(now):
                continue
            assert agent.last_event_id is not None
            cause = CommandContext(ctx.tenant_id, ctx.actor, (agent.last_event_id,))
            reason = "holder_unregistered" if agent.deleted else "holder_offline"
            revoked |= lock.revoke_holder(cause, agent_id, reason=reason, now=now) > 0
        return revoked

    def _live_agent(self, tenant_id: str, agent_id: UUID, now: datetime) -> Agent:
        agent = self._store.load(Agent, agent_id, tenant_id)
        if agent.deleted:
            raise NotFound(f"agent {agent_id} was unregistered")
        if not agent.is_alive(now):
            raise Conflict(f"agent {agent_id} is offline; it takes no locks until its next heartbeat")
        return agent

    def _stream_of(self, tenant_id: str, lock_id: UUID) -> UUID:
        """The lock stream a grant belongs to (its ``lock.acquired`` event's stream)."""
        with self._store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT stream_id FROM event_dag WHERE event_id = %s AND tenant_id = %s AND kind = 'lock.acquired'",
                (lock_id, tenant_id),
            )
            row = curs.fetchone()
        if row is None:
            raise NotFound(f"lock {lock_id} not found")
        stream_id: UUID = row["stream_id"]
        return stream_id
