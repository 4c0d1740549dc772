"""The lock aggregate: its rules one by one, and a property test of lock safety.

Safety is judged from the recorded events alone (as an auditor would from the log): every
grant holds from its ``at`` until the first of its expiry and the event that ended it;
no two such intervals of one resource may overlap when either is exclusive, and fencing
tokens grow with every grant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregate import CommandContext
from domain.errors import Conflict
from domain.events import DomainEvent
from domain.lock import (
    Lock,
    LockAcquired,
    LockExpired,
    LockExtended,
    LockMode,
    LockNotHeld,
    LockReleased,
    LockRevoked,
    LockTaken,
    lock_stream_id,
    parse_mode,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CTX = CommandContext("tenant-a", "test")
RESOURCE = UUID("00000000-0000-0000-0000-0000000000aa")
AGENTS = [UUID(int=i + 1) for i in range(4)]


def first(agent: UUID, mode: LockMode = "Exclusive", at: datetime = T0, ms: int = 1000) -> Lock:
    return Lock.first_acquire(
        CTX,
        resource_type="trajectory",
        resource_id=RESOURCE,
        holder_agent_id=agent,
        mode=mode,
        now=at,
        timeout=timedelta(milliseconds=ms),
    )


def only_grant(lock: Lock) -> UUID:
    (lock_id,) = lock.grants
    return lock_id


def test_modes_accept_the_reference_spelling_and_lower_case() -> None:
    assert parse_mode("Exclusive") == parse_mode("exclusive") == "Exclusive"
    assert parse_mode("Shared") == parse_mode("shared") == "Shared"
    with pytest.raises(ValueError):
        parse_mode("read")


def test_stream_id_is_one_per_tenant_and_resource() -> None:
    assert lock_stream_id("a", "note", RESOURCE) == lock_stream_id("a", "note", RESOURCE)
    assert lock_stream_id("a", "note", RESOURCE) != lock_stream_id("b", "note", RESOURCE)
    assert lock_stream_id("a", "note", RESOURCE) != lock_stream_id("a", "scope", RESOURCE)
    assert first(AGENTS[0]).id == lock_stream_id("tenant-a", "trajectory", RESOURCE)


def test_exclusive_excludes_everything_and_names_the_holder() -> None:
    lock = first(AGENTS[0])
    for mode in ("Exclusive", "Shared"):
        with pytest.raises(LockTaken) as taken:
            lock.acquire(CTX, holder_agent_id=AGENTS[1], mode=mode, now=T0, timeout=timedelta(seconds=1))
        assert [g.holder_agent_id for g in taken.value.holders] == [AGENTS[0]]
        assert taken.value.holders[0].expires_at == T0 + timedelta(seconds=1)


def test_shared_admits_shared_and_excludes_exclusive() -> None:
    lock = first(AGENTS[0], "Shared")
    grant = lock.acquire(CTX, holder_agent_id=AGENTS[1], mode="Shared", now=T0, timeout=timedelta(seconds=1))
    assert grant.fencing_token == 2
    with pytest.raises(LockTaken) as taken:
        lock.acquire(CTX, holder_agent_id=AGENTS[2], mode="Exclusive", now=T0, timeout=timedelta(seconds=1))
    assert {g.holder_agent_id for g in taken.value.holders} == {AGENTS[0], AGENTS[1]}


def test_an_agent_holds_one_grant_per_resource() -> None:
    lock = first(AGENTS[0], "Shared")
    with pytest.raises(LockTaken):
        lock.acquire(CTX, holder_agent_id=AGENTS[0], mode="Shared", now=T0, timeout=timedelta(seconds=1))


def test_an_expired_grant_is_recorded_and_the_resource_granted_again_with_a_higher_token() -> None:
    lock = first(AGENTS[0])
    old = only_grant(lock)
    later = T0 + timedelta(seconds=1)  # exactly at expiry: no longer held
    grant = lock.acquire(CTX, holder_agent_id=AGENTS[1], mode="Exclusive", now=later, timeout=timedelta(seconds=1))
    assert grant.fencing_token == 2
    kinds = [type(e) for e in lock.collect_events()]
    assert kinds == [LockAcquired, LockExpired, LockAcquired]
    with pytest.raises(LockNotHeld):
        lock.release(CTX, old, releasing_agent_id=AGENTS[0], now=later)


def test_only_the_holder_releases_or_extends_and_only_while_it_holds() -> None:
    lock = first(AGENTS[0])
    lock_id = only_grant(lock)
    with pytest.raises(LockNotHeld):
        lock.release(CTX, lock_id, releasing_agent_id=AGENTS[1], now=T0)
    with pytest.raises(LockNotHeld):
        lock.extend(CTX, lock_id, additional=timedelta(seconds=1), now=T0, agent_id=AGENTS[1])
    grant = lock.extend(CTX, lock_id, additional=timedelta(seconds=1), now=T0, agent_id=AGENTS[0])
    assert grant.expires_at == T0 + timedelta(seconds=2)
    with pytest.raises(LockNotHeld):  # past the extended expiry
        lock.extend(CTX, lock_id, additional=timedelta(seconds=1), now=T0 + timedelta(seconds=2))
    lock.release(CTX, lock_id, releasing_agent_id=AGENTS[0], now=T0 + timedelta(milliseconds=1500))
    with pytest.raises(LockNotHeld):  # released twice
        lock.release(CTX, lock_id, releasing_agent_id=AGENTS[0], now=T0 + timedelta(milliseconds=1600))
    assert issubclass(LockNotHeld, Conflict)


def test_the_expiry_timer_records_once() -> None:
    lock = first(AGENTS[0])
    assert not lock.expire(CTX, now=T0 + timedelta(milliseconds=999))
    assert lock.expire(CTX, now=T0 + timedelta(seconds=1))
    assert not lock.expire(CTX, now=T0 + timedelta(seconds=5))
    assert [type(e) for e in lock.collect_events()] == [LockAcquired, LockExpired]


def test_revoking_a_holder_ends_only_its_grants_and_names_them_as_causes() -> None:
    lock = first(AGENTS[0], "Shared")
    lock.acquire(CTX, holder_agent_id=AGENTS[1], mode="Shared", now=T0, timeout=timedelta(seconds=1))
    mine = only_grant(lock) if len(lock.grants) == 1 else next(iter(lock.grants))
    assert lock.revoke_holder(CTX, AGENTS[0], reason="holder_offline", now=T0) == 1
    assert lock.revoke_holder(CTX, AGENTS[0], reason="holder_offline", now=T0) == 0
    assert [g.holder_agent_id for g in lock.grants.values()] == [AGENTS[1]]
    revoked = lock.collect_events()[-1]
    assert isinstance(revoked, LockRevoked) and mine in revoked.parent_ids


def test_a_clock_that_goes_back_is_judged_at_the_streams_latest_time() -> None:
    lock = first(AGENTS[0], at=T0 + timedelta(seconds=10))
    lock_id = only_grant(lock)
    # A decision with an older clock cannot see the grant as "not yet acquired" or
    # stretch it: the stream's time never goes backwards.
    with pytest.raises(LockTaken):
        lock.acquire(CTX, holder_agent_id=AGENTS[1], mode="Exclusive", now=T0, timeout=timedelta(seconds=1))
    lock.release(CTX, lock_id, releasing_agent_id=AGENTS[0], now=T0)
    grant = lock.acquire(CTX, holder_agent_id=AGENTS[1], mode="Exclusive", now=T0, timeout=timedelta(seconds=1))
    assert grant.acquired_at == T0 + timedelta(seconds=10)


# -- the property ------------------------------------------------------------------------


def check_history(events: list[DomainEvent]) -> None:
    """Lock safety as the log shows it (see the module docstring)."""
    intervals: dict[UUID, list[Any]] = {}  # lock_id -> [mode, start, end]
    last_token = 0
    for event in events:
        if isinstance(event, LockAcquired):
            assert event.fencing_token > last_token, "fencing tokens only grow"
            last_token = event.fencing_token
            intervals[event.event_id] = [event.mode, event.at, event.expires_at]
        elif isinstance(event, LockExtended):
            assert event.at < intervals[event.lock_id][2], "only a grant that still holds is extended"
            intervals[event.lock_id][2] = event.expires_at
        elif isinstance(event, LockReleased | LockRevoked):
            assert event.at < intervals[event.lock_id][2], "only a grant that still holds is released"
            intervals[event.lock_id][2] = event.at
        elif isinstance(event, LockExpired):
            assert event.at >= intervals[event.lock_id][2], "only a grant past its expiry expires"
    spans = list(intervals.values())
    for i, (mode_a, start_a, end_a) in enumerate(spans):
        for mode_b, start_b, end_b in spans[i + 1 :]:
            overlap = start_a < end_b and start_b < end_a
            if overlap:
                assert mode_a == mode_b == "Shared", f"{mode_a} and {mode_b} held at once"


step = st.one_of(
    st.tuples(
        st.just("acquire"), st.sampled_from(AGENTS), st.sampled_from(["Exclusive", "Shared"]), st.integers(0, 50)
    ),
    st.tuples(st.just("extend"), st.sampled_from(AGENTS), st.integers(0, 3), st.integers(0, 30)),
    st.tuples(st.just("release"), st.sampled_from(AGENTS), st.integers(0, 3), st.just(0)),
    st.tuples(st.just("revoke"), st.sampled_from(AGENTS), st.just(0), st.just(0)),
    st.tuples(st.just("expire"), st.just(AGENTS[0]), st.just(0), st.just(0)),
    # The clock: usually forward, sometimes a little back (another process's clock).
    st.tuples(st.just("tick"), st.just(AGENTS[0]), st.integers(-5, 40), st.just(0)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, min_size=1, max_size=60))
def test_random_interleavings_never_break_lock_safety(steps: list[tuple[str, UUID, object, int]]) -> None:
    now = T0
    lock: Lock | None = None
    history: list[DomainEvent] = []
    for op, agent, arg, ms in steps:
        if op == "tick":
            assert isinstance(arg, int)
            now += timedelta(milliseconds=arg)
            continue
        try:
            if op == "acquire":
                mode: LockMode = "Exclusive" if arg == "Exclusive" else "Shared"
                if lock is None:
                    lock = first(agent, mode, now, ms)
                else:
                    lock.acquire(CTX, holder_agent_id=agent, mode=mode, now=now, timeout=timedelta(milliseconds=ms))
            elif lock is None:
                continue
            elif op in ("extend", "release"):
                assert isinstance(arg, int)
                grants = list(lock.grants)
                if not grants:
                    continue
                lock_id = grants[arg % len(grants)]
                if op == "extend":
                    lock.extend(CTX, lock_id, additional=timedelta(milliseconds=ms), now=now, agent_id=agent)
                else:
                    lock.release(CTX, lock_id, releasing_agent_id=agent, now=now)
            elif op == "revoke":
                lock.revoke_holder(CTX, agent, reason="holder_offline", now=now)
            elif op == "expire":
                lock.expire(CTX, now=now)
        except (LockTaken, LockNotHeld):
            pass  # refused: nothing was recorded
        if lock is not None:
            history += lock.collect_events()
            holders = lock.holders_at(now)
            exclusive = [g for g in holders if g.mode == "Exclusive"]
            assert not exclusive or len(holders) == 1, holders
    check_history(history)
    # The log replays to the same state (what a restart sees).
    if lock is not None and history:
        replayed: Lock | None = None
        for event in history:
            replayed = event.mutate(replayed)  # type: ignore[assignment]
        assert replayed is not None
        assert replayed.grants == lock.grants and replayed.fencing_token == lock.fencing_token
