"""Concurrent commands share append transactions, yet each stays all-or-nothing."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from commands.errors import CausesRejected, ConcurrencyConflict
from domain.aggregate import CommandContext
from domain.workflow import Workflow
from domain.workflow_graph import Node, WorkflowDefinition
from quipu.wiring import build_store

CTX = CommandContext("acme", "test")
DEF = WorkflowDefinition(nodes=[Node(id="a")])


def _new() -> Workflow:
    return Workflow.create(CTX, workflow_id=uuid.uuid4(), name="w", description="", definition=DEF, metadata={})


def test_concurrent_appends_are_grouped_and_all_land_in_order(database_url: str) -> None:
    store = build_store(database_url, 4)
    try:
        barrier = threading.Barrier(8)

        def writer(_: int) -> list[int]:
            barrier.wait()
            return [nid for _ in range(50) for nid in store.save_all(_new())]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(writer, range(8)))
        ids = [i for r in results for i in r]
        assert len(ids) == len(set(ids)) == 400
        assert store.committer.groups < 400  # some transactions carried several commands
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT notification_id FROM quipu_events ORDER BY notification_id").fetchall()
            dag = conn.execute("SELECT count(*) FROM event_dag").fetchone()
        assert sorted(ids) == [r[0] for r in rows] and dag == (400,)
    finally:
        store.close()


def test_a_failing_command_in_a_group_fails_alone(database_url: str) -> None:
    store = build_store(database_url, 4)
    try:
        existing = _new()
        store.save_all(existing)
        stale_a = store.load(Workflow, existing.id, "acme")
        stale_b = store.load(Workflow, existing.id, "acme")
        stale_a.update(CTX, name="a", description="", definition=DEF, metadata={})
        stale_b.update(CTX, name="b", description="", definition=DEF, metadata={})
        bad_cause = Workflow.create(
            CommandContext("acme", "test", (uuid.uuid4(),)),
            workflow_id=uuid.uuid4(),
            name="x",
            description="",
            definition=DEF,
            metadata={},
        )
        good = [_new() for _ in range(20)]
        barrier = threading.Barrier(23)
        outcomes: dict[str, object] = {}

        def run(name: str, aggregate: Workflow) -> None:
            barrier.wait()
            try:
                outcomes[name] = store.save_all(aggregate)
            except Exception as error:
                outcomes[name] = error

        threads = [threading.Thread(target=run, args=(f"good{i}", g)) for i, g in enumerate(good)]
        threads += [
            threading.Thread(target=run, args=("a", stale_a)),
            threading.Thread(target=run, args=("b", stale_b)),
            threading.Thread(target=run, args=("bad", bad_cause)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(isinstance(outcomes[f"good{i}"], list) for i in range(20)), outcomes
        assert isinstance(outcomes["bad"], CausesRejected)
        assert sorted(type(outcomes[k]).__name__ for k in ("a", "b")) == ["ConcurrencyConflict", "list"]
        assert store.load(Workflow, existing.id, "acme").version == 2
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM event_dag WHERE stream_id = %s", (bad_cause.id,)).fetchone() == (
                0,
            )
            assert conn.execute(
                "SELECT count(*) FROM quipu_events WHERE originator_id = %s", (bad_cause.id,)
            ).fetchone() == (0,)
            assert (
                conn.execute("SELECT count(*) FROM quipu_events").fetchone()
                == conn.execute("SELECT count(*) FROM event_dag").fetchone()
            )
    finally:
        store.close()


def test_conflict_type_is_preserved(database_url: str) -> None:
    store = build_store(database_url, 2)
    try:
        wf = _new()
        store.save_all(wf)
        again = store.load(Workflow, wf.id, "acme")
        other = store.load(Workflow, wf.id, "acme")
        again.delete(CTX)
        other.delete(CTX)
        store.save_all(again)
        with pytest.raises(ConcurrencyConflict):
            store.save_all(other)
    finally:
        store.close()
