"""``python -m bench.capacity``: what one Postgres core and one NATS node carry, measured here.

Three measurements, each on fresh embedded servers under a temporary folder:

* **Postgres**: ``threads`` threads append one ``Workflow.create`` each per transaction through
  the event store for ``seconds``; events/s, and events per CPU-second of the Postgres
  processes (postmaster and backends, from psutil), i.e. per fully used core.
* **NATS, one node (R1)** and **three nodes (R3)**: the relay's way of publishing (pipelined
  batches of 500, ``Nats-Msg-Id`` and ``Nats-Expected-Last-Msg-Id`` chained) of ``events``
  envelopes of the size Postgres stored; events/s, and events per CPU-second of each
  nats-server.

Everything runs on the same box as the client, so a figure is what this box gave with the
client competing for the same cores; one JSON object is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.common import new_workflow
from bus.runtime import connect_nats
from quipu.embedded import EmbeddedNats, EmbeddedNatsCluster, EmbeddedPostgres
from quipu.wiring import build_store

BATCH = 500


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _postgres_processes(pg: EmbeddedPostgres) -> list[psutil.Process]:
    """The postmaster and its children (the backends and background workers) of ``pg``."""
    postmaster = psutil.Process(int((pg.pgdata / "postmaster.pid").read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def measure_postgres(work: Path, threads: int, seconds: float) -> dict[str, Any]:
    with EmbeddedPostgres(work / "postgres") as pg:
        store = build_store(pg.create_database("capacity"), pool_size=threads)
        try:
            store.save_all(new_workflow("capacity"))  # tables created before the clock starts
            count = [0]
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def append() -> None:
                n = 0
                while time.monotonic() < deadline:
                    store.save_all(new_workflow("capacity", i=n))
                    n += 1
                with lock:
                    count[0] += n

            procs = _postgres_processes(pg)
            cpu0, t0 = _cpu_seconds(procs), time.perf_counter()
            workers = [threading.Thread(target=append) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - t0
            cpu = _cpu_seconds(_postgres_processes(pg)) - cpu0  # backends started during the run count too
            with psycopg.connect(pg.create_database("capacity"), autocommit=True) as conn:
                row = conn.execute("SELECT avg(octet_length(state)) FROM quipu_events").fetchone()
            size = int(row[0]) if row and row[0] else 900
        finally:
            store.close()
    return {
        "postgres_threads": threads,
        "postgres_events_per_s": count[0] / elapsed,
        "postgres_cpu_s": cpu,
        "postgres_events_per_cpu_s": count[0] / cpu if cpu else None,
        "event_bytes": size,
    }


async def _publish(endpoint: Any, events: int, size: int, replicas: int) -> float:
    nc = await connect_nats(endpoint)
    try:
        js = nc.jetstream(timeout=30)
        await js.add_stream(name="CAPACITY", subjects=["capacity.>"], num_replicas=replicas, duplicate_window=300)
        payload, last = b"x" * size, None
        t0 = time.perf_counter()
        for start in range(0, events, BATCH):
            futures = []
            for i in range(start, min(start + BATCH, events)):
                headers = {"Nats-Msg-Id": f"e{i}"}
                if last is not None:
                    headers["Nats-Expected-Last-Msg-Id"] = last
                futures.append(await js.publish_async(f"capacity.t.{i % 16}", payload, headers=headers))
                last = f"e{i}"
            await asyncio.gather(*futures)
        return time.perf_counter() - t0
    finally:
        await nc.close()


def measure_nats(work: Path, events: int, size: int, nodes: int) -> dict[str, Any]:
    servers: EmbeddedNats | EmbeddedNatsCluster = (
        EmbeddedNats(work / "nats") if nodes == 1 else EmbeddedNatsCluster(work / "nats-cluster", size=nodes)
    )
    with servers:
        members = [servers] if isinstance(servers, EmbeddedNats) else servers.nodes
        procs = [psutil.Process(node._proc.pid) for node in members if node._proc is not None]
        before = [_cpu_seconds([proc]) for proc in procs]
        elapsed = asyncio.run(_publish(servers.endpoint, events, size, replicas=nodes))
        per_node = [_cpu_seconds([proc]) - cpu for proc, cpu in zip(procs, before, strict=True)]
    key = f"nats_r{nodes}"
    return {
        f"{key}_events_per_s": events / elapsed,
        f"{key}_cpu_s_per_node": per_node,
        f"{key}_events_per_cpu_s_busiest_node": events / max(per_node) if max(per_node) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--threads", type=int, default=8, help="appending threads (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=15.0, help="append for this long (default %(default)s)")
    parser.add_argument("--events", type=int, default=20_000, help="events published per NATS run")
    args = parser.parse_args()
    out: dict[str, Any] = {"cpus": psutil.cpu_count(), "load_1m_at_start": psutil.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="quipu-capacity-") as tmp:
        work = Path(tmp)
        out |= measure_postgres(work, args.threads, args.seconds)
        for nodes in (1, 3):
            out |= measure_nats(work, args.events, int(out["event_bytes"]), nodes)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
