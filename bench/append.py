"""1. Command append throughput vs raw INSERT+COMMIT of same-sized rows."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from bench.common import Progress, new_workflow
from commands.store import EventStore


@dataclass
class AppendResult:
    threads: int
    quipu_eps: float
    raw_eps: float
    state_bytes: int


def _run_threads(threads: int, total: int, work: Callable[[int, Callable[[], None]], None], label: str) -> float:
    """Run ``work(count, tick)`` on ``threads`` threads; return events per second."""
    per = total // threads
    progress = Progress(label, per * threads)
    done = [0]
    lock = threading.Lock()

    def tick() -> None:
        with lock:
            done[0] += 1
            progress.update(done[0])

    errors: list[BaseException] = []

    def target() -> None:
        try:
            work(per, tick)
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=target) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    progress.done()
    if errors:
        raise errors[0]
    return per * threads / elapsed


def state_sample(store: EventStore) -> tuple[str, bytes]:
    wf = new_workflow("bench")
    event = wf.collect_events()[0]
    stored = store.mapper.to_stored_event(event)
    return stored.topic, stored.state


def measure(
    store: EventStore, database_url: str, n: int, thread_counts: tuple[int, ...] = (1, 8)
) -> list[AppendResult]:
    topic, state = state_sample(store)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, originator_id uuid NOT NULL,"
            " originator_version integer NOT NULL, topic text NOT NULL, state bytea NOT NULL)"
        )

    def quipu_work(count: int, tick: Callable[[], None]) -> None:
        for i in range(count):
            store.save_all(new_workflow("bench", i=i))
            tick()

    def raw_work(count: int, tick: Callable[[], None]) -> None:
        with psycopg.connect(database_url) as conn:
            for _ in range(count):
                conn.execute(
                    "INSERT INTO bench_raw (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                    (uuid.uuid4(), 1, topic, state),
                    prepare=True,
                )
                conn.commit()
                tick()

    results = []
    for threads in thread_counts:
        # Warm up connections / prepared statements outside the timing.
        _run_threads(threads, threads * 5, quipu_work, f"warm-up quipu x{threads}")
        raw = _run_threads(threads, n, raw_work, f"raw INSERT+COMMIT x{threads}")
        q = _run_threads(threads, n, quipu_work, f"quipu save_all x{threads}")
        results.append(AppendResult(threads, q, raw, len(state)))
    return results
