"""The relay under faults: NATS going away, relays crashing mid-batch, two relays at once.

Every test runs its own nats-server (in ``tmp_path``) so it can stop and kill it without
touching the session server. The invariant checked at the end is always the same: the
stream holds every event of the Postgres log exactly once, in notification order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bus.relay import Relay
from bus.runtime import connect_nats
from bus.subjects import Subjects
from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.ids import uuid7
from domain.workflow import Workflow
from domain.workflow_graph import Node, WorkflowDefinition
from quipu.embedded import EmbeddedNats
from quipu.wiring import build_store

pytestmark = pytest.mark.fault

CTX = CommandContext("acme", "test")
DEFINITION = WorkflowDefinition(nodes=[Node(id="a")])


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    s = build_store(database_url, pool_size=2)
    try:
        yield s
    finally:
        s.close()


class Appender:
    """Appends workflows in small transactions from a thread; ``count`` is what committed."""

    def __init__(self, store: EventStore, total: int, per_save: int = 10) -> None:
        self.store, self.total, self.per_save = store, total, per_save
        self.count = 0

    def _run(self) -> None:
        while self.count < self.total:
            wfs = [
                Workflow.create(
                    CTX,
                    workflow_id=uuid7(),
                    name=f"wf-{self.count + i}",
                    description="",
                    definition=DEFINITION,
                    metadata={},
                )
                for i in range(min(self.per_save, self.total - self.count))
            ]
            self.store.save_all(*wfs)  # must keep succeeding whatever NATS does
            self.count += len(wfs)

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(asyncio.to_thread(self._run))

    async def reached(self, n: int, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while self.count < n:
                await asyncio.sleep(0.01)


def _query(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


async def relay_position(database_url: str) -> int:
    return await asyncio.to_thread(
        _query,
        database_url,
        "SELECT max(notification_id) FROM relay_position WHERE to_regclass('relay_position') IS NOT NULL",
    )


async def wait_relayed(database_url: str, at_least: int | None = None, timeout: float = 60.0) -> None:
    """Until the relay's stored position reached ``at_least`` (default: the log head)."""
    async with asyncio.timeout(timeout):
        while True:
            target = (
                at_least
                if at_least is not None
                else await asyncio.to_thread(
                    _query, database_url, "SELECT coalesce(max(notification_id), 0) FROM quipu_events"
                )
            )
            with contextlib.suppress(psycopg.errors.UndefinedTable):
                if await relay_position(database_url) >= target:
                    return
            await asyncio.sleep(0.05)


async def _start_relay(relay: Relay) -> tuple[asyncio.Task[None], asyncio.Event]:
    stop = asyncio.Event()
    return asyncio.create_task(relay.run(stop)), stop


async def _finish(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, 15)


async def stream_contents(nats_url: str, subjects: Subjects) -> list[tuple[str, int]]:
    """(event_id, notification_id) of every message in the stream, in stream order."""
    nc = await connect_nats(nats_url, allow_reconnect=False)
    try:
        js = nc.jetstream(timeout=10)
        info = await js.stream_info(subjects.events_stream)
        expected = info.state.messages
        sub = await js.pull_subscribe(
            subjects.all_events,
            stream=subjects.events_stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        out: list[tuple[str, int]] = []
        seqs: list[int] = []
        while len(out) < expected:
            try:
                msgs = await sub.fetch(500, timeout=2)
            except NatsTimeout:
                break
            for m in msgs:
                assert m.headers is not None
                seqs.append(m.metadata.sequence.stream)
                out.append((m.headers["Nats-Msg-Id"], int(m.headers["Quipu-Notification-Id"])))
        assert seqs == sorted(seqs), "ephemeral consumer did not deliver in stream order"
        assert len(out) == expected, (len(out), expected)
        return out
    finally:
        await nc.close()


def log_events(database_url: str) -> list[tuple[str, int]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT event_id, notification_id FROM event_dag ORDER BY notification_id").fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


async def assert_exactly_once_in_order(database_url: str, nats_url: str, subjects: Subjects) -> int:
    await wait_relayed(database_url)
    published = await stream_contents(nats_url, subjects)
    expected = await asyncio.to_thread(log_events, database_url)
    ids = [event_id for event_id, _ in published]
    assert len(published) == len(expected), f"stream has {len(published)} messages, log has {len(expected)}"
    assert len(set(ids)) == len(ids), "an event was published twice"
    assert set(ids) == {event_id for event_id, _ in expected}
    nids = [n for _, n in published]
    assert all(a < b for a, b in itertools.pairwise(nids)), "notification ids not increasing"
    assert published == expected
    return len(published)


@contextlib.asynccontextmanager
async def relay_process(
    database_url: str, nats_env: dict[str, str], subjects: Subjects, log_path: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``quipu relay`` as a real OS process (killed on exit whatever happened)."""
    env = {
        **os.environ,
        "QUIPU_DATABASE_URL": database_url,
        **nats_env,  # URL, account and signing key: the relay mints its own NATS user
        "QUIPU_SUBJECT_PREFIX": subjects.prefix,
        "QUIPU_LOG_FORMAT": "json",
    }
    quipu_bin = Path(sys.executable).with_name("quipu")
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            [str(quipu_bin), "relay"], env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def test_relay_survives_nats_outage_and_crashes(
    database_url: str, store: EventStore, own_nats: EmbeddedNats, subjects: Subjects, tmp_path: Path
) -> None:
    total = 3000
    appender = Appender(store, total)
    relay_a = Relay(database_url, own_nats.endpoint, subjects, batch_size=50, idle_wait=0.2)
    task_a, stop_a = await _start_relay(relay_a)
    appending = appender.start()
    try:
        # 1. NATS goes away mid-run: appends keep committing, the relay keeps retrying.
        await appender.reached(400)
        await wait_relayed(database_url, at_least=100)
        own_nats.stop()
        before = appender.count
        await appender.reached(before + 400)
        assert not task_a.done(), "the relay gave up while NATS was down"
        own_nats.start()  # same port, same store: clients reconnect
        await wait_relayed(database_url, at_least=before + 200)

        # 2. The relay task is cancelled in the middle of its work (an in-process crash).
        # (appends are still running, so the relay is busy publishing a batch of 50)
        await asyncio.sleep(0.037)
        assert not task_a.done()
        # nats-py awaits each PubAck with asyncio.wait_for, which on Python 3.11 loses a
        # cancellation that races with the ack arriving: cancel until the task really ended.
        while not task_a.done():
            task_a.cancel()
            await asyncio.wait([task_a], timeout=0.5)
        relay_b = Relay(database_url, own_nats.endpoint, subjects, batch_size=50, idle_wait=0.2)
        task_b, stop_b = await _start_relay(relay_b)
        await appender.reached(1800)
        await wait_relayed(database_url, at_least=1700)
        await _finish(task_b, stop_b)

        # 3. A real `quipu relay` process is SIGKILLed while it publishes, and NATS is killed too.
        # (no relay runs now, so these are waiting for the process below)
        await asyncio.to_thread(Appender(store, 300, per_save=30)._run)
        async with relay_process(database_url, own_nats.env(), subjects, tmp_path / "relay.log") as proc:
            start = await relay_position(database_url)
            async with asyncio.timeout(30):
                while await relay_position(database_url) <= start:
                    assert proc.poll() is None, (tmp_path / "relay.log").read_text()[-3000:]
                    await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        own_nats.kill()
        await appender.reached(min(total, appender.count + 200))
        own_nats.start()

        relay_c = Relay(database_url, own_nats.endpoint, subjects, batch_size=200, idle_wait=0.2)
        task_c, stop_c = await _start_relay(relay_c)
        await asyncio.wait_for(appending, 120)
        try:
            count = await assert_exactly_once_in_order(database_url, own_nats.endpoint, subjects)
        finally:
            await _finish(task_c, stop_c)
        assert count == total + 300
    finally:
        stop_a.set()
        if not task_a.done():
            task_a.cancel()
        appender.total = 0  # stop appending if the test failed early
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(appending, 60)


async def test_two_relays_publish_each_event_once_and_fail_over(
    database_url: str, store: EventStore, own_nats: EmbeddedNats, subjects: Subjects
) -> None:
    first = Relay(database_url, own_nats.endpoint, subjects, name="default", batch_size=100, idle_wait=0.2)
    second = Relay(database_url, own_nats.endpoint, subjects, name="default", batch_size=100, idle_wait=0.2)
    task_1, stop_1 = await _start_relay(first)
    task_2, stop_2 = await _start_relay(second)
    try:
        await asyncio.to_thread(Appender(store, 500, per_save=25)._run)
        await assert_exactly_once_in_order(database_url, own_nats.endpoint, subjects)
        leader, standby = (first, second) if first.published else (second, first)
        assert leader.published == 500 and standby.published == 0, "both relays were active"
        # The active relay stops: the standby takes the advisory lock and carries on.
        leader_task, leader_stop = (task_1, stop_1) if leader is first else (task_2, stop_2)
        await _finish(leader_task, leader_stop)
        await asyncio.to_thread(Appender(store, 300, per_save=25)._run)
        count = await assert_exactly_once_in_order(database_url, own_nats.endpoint, subjects)
        assert count == 800
        assert standby.published == 300
    finally:
        for task, stop in ((task_1, stop_1), (task_2, stop_2)):
            if not task.done():
                await _finish(task, stop)
