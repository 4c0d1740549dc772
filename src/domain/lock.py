"""The lock aggregate (CELLSTATE reference, plus fencing): who may work on one resource.

There is one lock stream per (tenant, resource_type, resource_id); its id is derived
from those (``lock_stream_id``), so every acquire of a resource loads and appends to the
same stream and concurrent acquires serialise on its version (the store's unique
(stream, version) key lets one win; the loser decides again on the fresh state).

A grant is one holder's hold on the resource; its id (the API's ``lock_id``) is the id of
the ``lock.acquired`` event that made it, so a grant is a node of the event DAG and its
release, extension or expiry names it as a cause. Rules (``Lock.acquire``):

- ``Exclusive`` excludes every other grant; ``Shared`` excludes ``Exclusive`` only.
- A grant holds until its ``expires_at`` (written into the event, so timers can be rebuilt
  from the log); from then on it no longer counts, whether or not its ``lock.expired``
  has been recorded yet. Only the holder releases or extends, and only while it holds.
- Every grant carries a ``fencing_token`` one above the last grant's on this resource, so
  a holder that paused past its expiry can be refused by whoever it writes to.

Decision times never go backwards on a stream (``clock``): a command decided with an
older clock than the last event's is judged at the last event's time, so no interleaving
of clocks can grant an exclusive lock inside another holder's interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

LockMode = Literal["Exclusive", "Shared"]
ResourceType = Literal["trajectory", "scope", "artifact", "note", "agent"]
# Leases are bounded so a forgotten lock frees its resource within a day.
MAX_LEASE_MS = 86_400_000
LeaseMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_LEASE_MS)]
EndReason = Literal["released", "expired", "revoked"]

_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/lock")


def lock_stream_id(tenant_id: str, resource_type: str, resource_id: UUID) -> UUID:
    """The one lock stream of a resource (deterministic: every acquirer finds the same)."""
    return uuid5(_NAMESPACE, f"{tenant_id}\x00{resource_type}\x00{resource_id}")


def parse_mode(mode: str) -> LockMode:
    """Accept the reference's spelling and lower case: ``Exclusive``/``exclusive``."""
    lowered = mode.lower()
    if lowered == "exclusive":
        return "Exclusive"
    if lowered == "shared":
        return "Shared"
    raise ValueError(f"mode must be Exclusive or Shared, not {mode!r}")


@dataclass(frozen=True)
class Grant:
    """One active hold on the resource."""

    lock_id: UUID
    holder_agent_id: UUID
    mode: LockMode
    fencing_token: int
    acquired_at: datetime
    expires_at: datetime

    def holds_at(self, now: datetime) -> bool:
        return now < self.expires_at


class LockTaken(Conflict):
    """The resource is held in a mode that excludes the request (HTTP 409 with the holders)."""

    def __init__(self, message: str, holders: list[Grant]) -> None:
        super().__init__(message)
        self.holders = holders


class LockNotHeld(Conflict):
    """The grant is over (released, expired, revoked) or the caller is not its holder (409)."""


@event_kind("lock.acquired", 0xC201)
class LockAcquired(DomainEvent, frozen=True, kw_only=True):
    """A grant; its event id is the ``lock_id``."""

    resource_type: str
    resource_id: UUID
    holder_agent_id: UUID
    mode: str
    fencing_token: int
    at: datetime
    expires_at: datetime


@event_kind("lock.extended", 0xC202)
class LockExtended(DomainEvent, frozen=True, kw_only=True):
    lock_id: UUID
    at: datetime
    expires_at: datetime


@event_kind("lock.released", 0xC203)
class LockReleased(DomainEvent, frozen=True, kw_only=True):
    lock_id: UUID
    releasing_agent_id: UUID
    at: datetime


@event_kind("lock.expired", 0xC204)
class LockExpired(DomainEvent, frozen=True, kw_only=True):
    """The grant's ``expires_at`` passed without release or extension (the expiry timer)."""

    lock_id: UUID
    at: datetime
    expires_at: datetime


@event_kind("lock.revoked", 0xC205)
class LockRevoked(DomainEvent, frozen=True, kw_only=True):
    """The holder went offline or was unregistered; its grant ends with it."""

    lock_id: UUID
    holder_agent_id: UUID
    reason: str
    at: datetime


@aggregate_root("lock")
class Lock(Aggregate):
    resource_type: str
    resource_id: UUID
    fencing_token: int  # the last token issued on this resource
    grants: dict[UUID, Grant]  # active (not yet released, expired or revoked) grants
    clock: datetime  # the latest decision time on this stream

    @classmethod
    def first_acquire(
        cls,
        ctx: CommandContext,
        *,
        resource_type: str,
        resource_id: UUID,
        holder_agent_id: UUID,
        mode: LockMode,
        now: datetime,
        timeout: timedelta,
    ) -> Lock:
        """The resource's first grant (it has never been locked): fencing token 1."""
        return cls._create(
            LockAcquired,
            ctx,
            aggregate_id=lock_stream_id(ctx.tenant_id, resource_type, resource_id),
            resource_type=resource_type,
            resource_id=resource_id,
            holder_agent_id=holder_agent_id,
            mode=mode,
            fencing_token=1,
            at=now,
            expires_at=now + timeout,
        )

    def acquire(
        self, ctx: CommandContext, *, holder_agent_id: UUID, mode: LockMode, now: datetime, timeout: timedelta
    ) -> Grant:
        """Grant the resource to ``holder_agent_id`` if no active grant excludes it
        (``LockTaken`` otherwise, naming the holders). Grants past their expiry are
        recorded as expired first. An agent holds at most one grant per resource."""
        now = self._decision_time(now)
        self._expire_due(ctx, now)
        active = list(self.grants.values())
        if any(g.holder_agent_id == holder_agent_id for g in active):
            raise LockTaken(f"agent {holder_agent_id} already holds this resource; extend its lock instead", active)
        blocking = active if mode == "Exclusive" else [g for g in active if g.mode == "Exclusive"]
        if blocking:
            raise LockTaken(
                f"{self.resource_type} {self.resource_id} is held ({blocking[0].mode}) until"
                f" {max(g.expires_at for g in blocking).isoformat()}",
                blocking,
            )
        self._trigger(
            LockAcquired,
            ctx,
            resource_type=self.resource_type,
            resource_id=self.resource_id,
            holder_agent_id=holder_agent_id,
            mode=mode,
            fencing_token=self.fencing_token + 1,
            at=now,
            expires_at=now + timeout,
        )
        assert self.last_event_id is not None
        return self.grants[self.last_event_id]

    def extend(
        self, ctx: CommandContext, lock_id: UUID, *, additional: timedelta, now: datetime, agent_id: UUID | None = None
    ) -> Grant:
        """Push the grant's expiry by ``additional`` (nothing recorded for zero)."""
        now = self._decision_time(now)
        grant = self.held(lock_id, now, agent_id)
        if additional <= timedelta(0):
            return grant
        self._trigger(
            LockExtended, _caused(ctx, lock_id), lock_id=lock_id, at=now, expires_at=grant.expires_at + additional
        )
        return self.grants[lock_id]

    def release(self, ctx: CommandContext, lock_id: UUID, *, releasing_agent_id: UUID, now: datetime) -> Grant:
        """The holder lets go (``LockNotHeld`` for anyone else, or a grant that is over)."""
        now = self._decision_time(now)
        grant = self.held(lock_id, now, releasing_agent_id)
        self._trigger(
            LockReleased, _caused(ctx, lock_id), lock_id=lock_id, releasing_agent_id=releasing_agent_id, at=now
        )
        return grant

    def expire(self, ctx: CommandContext, *, now: datetime) -> bool:
        """The expiry timer fired: record every grant past its expiry. False if none was."""
        return self._expire_due(ctx, self._decision_time(now)) > 0

    def revoke_holder(self, ctx: CommandContext, holder_agent_id: UUID, *, reason: str, now: datetime) -> int:
        """End every active grant of an agent that went offline or was unregistered;
        returns how many ended (grants already past expiry are recorded as expired)."""
        now = self._decision_time(now)
        self._expire_due(ctx, now)
        mine = [g for g in self.grants.values() if g.holder_agent_id == holder_agent_id]
        for grant in mine:
            self._trigger(
                LockRevoked,
                _caused(ctx, grant.lock_id),
                lock_id=grant.lock_id,
                holder_agent_id=holder_agent_id,
                reason=reason,
                at=now,
            )
        return len(mine)

    def held(self, lock_id: UUID, now: datetime, agent_id: UUID | None = None) -> Grant:
        """The grant if it still holds at ``now`` (and belongs to ``agent_id`` when given)."""
        grant = self.grants.get(lock_id)
        if grant is None:
            raise LockNotHeld(f"lock {lock_id} is no longer held (released, expired or revoked)")
        if not grant.holds_at(max(now, self.clock)):
            raise LockNotHeld(f"lock {lock_id} expired at {grant.expires_at.isoformat()}")
        if agent_id is not None and agent_id != grant.holder_agent_id:
            raise LockNotHeld(f"agent {agent_id} is not the holder of lock {lock_id}")
        return grant

    def holders_at(self, now: datetime) -> list[Grant]:
        """The grants that hold at ``now`` (an expired one may not be recorded yet)."""
        return [g for g in self.grants.values() if g.holds_at(max(now, self.clock))]

    def next_expiry(self) -> datetime | None:
        """When the expiry timer should next look at this stream."""
        return min((g.expires_at for g in self.grants.values()), default=None)

    def _decision_time(self, now: datetime) -> datetime:
        return max(now, self.clock)

    def _expire_due(self, ctx: CommandContext, now: datetime) -> int:
        due = [g for g in self.grants.values() if not g.holds_at(now)]
        for grant in due:
            self._trigger(
                LockExpired, _caused(ctx, grant.lock_id), lock_id=grant.lock_id, at=now, expires_at=grant.expires_at
            )
        return len(due)

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, LockAcquired):
            if event.originator_version == 1:
                self.resource_type = event.resource_type
                self.resource_id = event.resource_id
                self.grants = {}
            self.fencing_token = event.fencing_token
            self.grants[event.event_id] = Grant(
                lock_id=event.event_id,
                holder_agent_id=event.holder_agent_id,
                mode=parse_mode(event.mode),
                fencing_token=event.fencing_token,
                acquired_at=event.at,
                expires_at=event.expires_at,
            )
        elif isinstance(event, LockExtended):
            old = self.grants[event.lock_id]
            self.grants[event.lock_id] = Grant(
                old.lock_id, old.holder_agent_id, old.mode, old.fencing_token, old.acquired_at, event.expires_at
            )
        elif isinstance(event, LockReleased | LockExpired | LockRevoked):
            del self.grants[event.lock_id]
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Lock cannot apply {type(event).__name__}")
        self.clock = max(self.clock, event.at) if event.originator_version > 1 else event.at


def _caused(ctx: CommandContext, lock_id: UUID) -> CommandContext:
    """A grant's later events name the grant (its ``lock.acquired``) as a cause."""
    return CommandContext(ctx.tenant_id, ctx.actor, (lock_id, *ctx.caused_by))
