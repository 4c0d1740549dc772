"""Lock safety through the service on real Postgres: several agents, each in a thread of
its own, acquire, extend and release one resource while the expiry timer fires, in random
scripts; real concurrency decides the interleaving. The recorded events of the resource's
lock stream are then judged as in the domain property test: no exclusive grant overlaps
another grant, and fencing tokens only grow."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.agents import AgentInput, AgentService
from commands.locks import AcquireInput, LockService
from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.lock import LockAcquired, LockNotHeld, LockRevoked, LockTaken, lock_stream_id
from quipu.wiring import build_store
from tests.unit.test_lock_domain import check_history

CTX = CommandContext("acme", "test")

acquire = st.tuples(st.just("acquire"), st.sampled_from(["Exclusive", "Shared"]), st.integers(0, 400))
op = st.one_of(
    acquire,
    acquire,  # twice as likely: contention is what is being tested
    st.tuples(st.just("extend"), st.just(""), st.integers(0, 100)),
    st.tuples(st.just("release"), st.just(""), st.just(0)),
    st.tuples(st.just("expire"), st.just(""), st.just(0)),
    st.tuples(st.just("sleep"), st.just(""), st.integers(0, 40)),
)
script = st.lists(op, min_size=1, max_size=10).map(lambda ops: [("acquire", "Shared", 300), *ops])


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    built = build_store(database_url, 8)
    yield built
    built.close()


def _run(locks: LockService, agent: uuid.UUID, resource: uuid.UUID, script: list[tuple[str, str, int]]) -> list[int]:
    """One agent's script; returns the fencing tokens it was granted, in order."""
    tokens: list[int] = []
    mine: uuid.UUID | None = None
    for action, mode, ms in script:
        try:
            if action == "acquire":
                data = AcquireInput(agent, "trajectory", resource, "Exclusive" if mode == "Exclusive" else "Shared", ms)
                _, grant = locks.acquire(CTX, data)
                mine = grant.lock_id
                tokens.append(grant.fencing_token)
            elif action == "extend" and mine is not None:
                locks.extend(CTX, mine, additional_ms=ms, agent_id=agent)
            elif action == "release" and mine is not None:
                locks.release(CTX, mine, releasing_agent_id=agent)
            elif action == "expire":
                locks.expire("acme", lock_stream_id("acme", "trajectory", resource))
            elif action == "sleep":
                time.sleep(ms / 1000)
        except (LockTaken, LockNotHeld):
            pass  # refused: nothing recorded
    return tokens


def test_concurrent_agents_never_break_lock_safety_on_postgres(store: EventStore) -> None:
    service = AgentService(store, offline_after=timedelta(hours=1))
    agents = [service.register(CTX, AgentInput("Tester"))[0].id for _ in range(3)]
    locks = LockService(store)

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(script, min_size=3, max_size=3))
    def interleavings(scripts: list[list[tuple[str, str, int]]]) -> None:
        resource = uuid.uuid4()
        granted: dict[int, list[int]] = {}
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                granted[i] = _run(locks, agents[i], resource, scripts[i])
            except BaseException as error:  # surfaced below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        history: list[Any] = list(store.events_of(lock_stream_id("acme", "trajectory", resource)))
        check_history(history)
        for tokens in granted.values():  # each agent saw its tokens grow
            assert tokens == sorted(set(tokens))
        recorded = sorted(e.fencing_token for e in history if isinstance(e, LockAcquired))
        assert recorded == sorted(t for tokens in granted.values() for t in tokens)
        assert recorded == list(range(1, len(recorded) + 1))  # one token per grant, none skipped

    interleavings()


def test_a_gone_holder_no_longer_blocks_even_before_its_timer_revokes_it(store: EventStore) -> None:
    # No timer runs: the grant stands for one the read model missed while its agent was
    # being taken offline. Once the timer does run, it finds the grant already revoked.
    resource = uuid.uuid4()
    stream = lock_stream_id("acme", "trajectory", resource)
    locks = LockService(store, held_by=lambda _tenant, _agent: [stream])
    agents = AgentService(store, offline_after=timedelta(milliseconds=300), offline_consequences=locks.revoke_for)
    gone = agents.register(CTX, AgentInput("Tester"))[0].id
    _, held = locks.acquire(CTX, AcquireInput(gone, "trajectory", resource, "Exclusive", 600_000))
    time.sleep(0.4)  # past gone's deadline; its went_offline is not recorded (no timer runs here)
    living = agents.register(CTX, AgentInput("Tester"))[0].id
    _, grant = locks.acquire(CTX, AcquireInput(living, "trajectory", resource, "Exclusive", 60_000))
    assert grant.fencing_token == held.fencing_token + 1
    events = list(store.events_of(lock_stream_id("acme", "trajectory", resource)))
    revoked = [e for e in events if isinstance(e, LockRevoked)]
    assert [(e.lock_id, e.holder_agent_id, e.reason) for e in revoked] == [(held.lock_id, gone, "holder_offline")]
    check_history(events)
    # A live holder still blocks.
    with pytest.raises(LockTaken):
        locks.acquire(
            CTX, AcquireInput(agents.register(CTX, AgentInput("T"))[0].id, "trajectory", resource, "Shared", 1)
        )
    # And the agent's own timer later records it offline without revoking anything twice.
    assert agents.go_offline("acme", gone)
    assert (
        len([e for e in store.events_of(lock_stream_id("acme", "trajectory", resource)) if isinstance(e, LockRevoked)])
        == 1
    )
