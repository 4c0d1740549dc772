"""NATS leader loss under load: Quipu (``quipu up``: API, relay, projectors) on a local
three-node JetStream cluster with three replicas, a steady stream of commands, and SIGKILL of
the server leading the event stream; once it is back and current, the new leader is killed too.

Counts what was sent, acknowledged (201), present in the log, in the stream (exactly once,
in log order) and duplicated, and samples the append -> read-model lag of the ``workflows``
projection all along. tests/faults/test_nats_leader_loss.py asserts on the counts; the bench
phase reports the lag pause (``nats_leader_loss_lag_pause_ms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError

from bench.phase import Context, Outcome
from bus.runtime import connect_nats
from bus.subjects import Subjects
from commands.log import backlog
from projections.applier import position
from projections.workflows import WorkflowsProjection
from quipu.embedded import EmbeddedNatsCluster, free_port

SUBJECTS = Subjects("quipu")
DEFINITION = {"nodes": [{"id": "a"}]}


@dataclass
class LeaderLoss:
    """What one run saw. Times in ms; ``kills`` says which server died when, and who took over."""

    sent: int = 0
    acknowledged: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # status (or error) -> count
    present: int = 0
    in_stream: int = 0
    duplicated: int = 0
    stream_matches_log: bool = False
    log_events: int = 0
    read_model_equals_rebuild: bool = False
    lag_before_ms: float = 0.0  # max append -> projected lag before the first kill
    lag_pause_ms: float = 0.0  # max append -> projected lag from the first kill to the end
    kills: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {**{k: v for k, v in vars(self).items() if k != "acknowledged"}, "acknowledged": len(self.acknowledged)}


def run_leader_loss(database_url: str, work_dir: Path, *, rate: float = 20.0, settle_s: float = 4.0) -> LeaderLoss:
    """The whole scenario on ``database_url`` (an empty database) with a cluster under ``work_dir``."""
    started = time.monotonic()
    with EmbeddedNatsCluster(work_dir / "nats", size=3) as cluster, _quipu(database_url, cluster, work_dir) as env:
        runtime = json.loads((work_dir / "quipu" / "runtime.json").read_text())
        result = asyncio.run(_scenario(cluster, runtime, database_url, rate, settle_s))
        snapshot = _read_model(database_url)
        env["stop"]()
        subprocess.run(
            [*env["quipu"], "projector", "rebuild", "workflows"], env=env["env"], capture_output=True, check=True
        )
        result.read_model_equals_rebuild = _read_model(database_url) == snapshot and bool(snapshot)
    result.seconds = time.monotonic() - started
    return result


@contextlib.contextmanager
def _quipu(database_url: str, cluster: EmbeddedNatsCluster, work_dir: Path) -> Iterator[dict[str, Any]]:
    """``quipu up`` on the cluster (its roles mint their own NATS users), until stopped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    env |= cluster.env() | {
        "QUIPU_DATABASE_URL": database_url,
        "QUIPU_NATS_REPLICAS": "3",
        "QUIPU_DATA_DIR": str(work_dir / "quipu"),
        "QUIPU_PORT": str(free_port()),
        "QUIPU_LOG_FORMAT": "json",
    }
    quipu = [sys.executable, "-m", "quipu.cli"]
    with (work_dir / "quipu.log").open("ab") as out:
        proc = subprocess.Popen([*quipu, "up"], env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    try:
        deadline = time.monotonic() + 120
        while not (work_dir / "quipu" / "runtime.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"quipu up did not start; see {work_dir / 'quipu.log'}")
            time.sleep(0.1)
        yield {"stop": stop, "env": env, "quipu": quipu}
    finally:
        stop()


async def _scenario(
    cluster: EmbeddedNatsCluster, runtime: dict[str, Any], database_url: str, rate: float, settle_s: float
) -> LeaderLoss:
    out = LeaderLoss()
    nc = await connect_nats(cluster.endpoint)
    js = nc.jetstream(timeout=2)
    await _wait_stream(js, lambda info: info.config.num_replicas == 3 and _all_current(info))
    stop, lags = asyncio.Event(), []
    headers = {"Authorization": f"Bearer {runtime['api_key']}"}
    async with httpx.AsyncClient(base_url=runtime["api_url"], headers=headers, timeout=30) as api:
        load = asyncio.create_task(_load(api, rate, stop, out))
        sampler = asyncio.create_task(_sample_lag(database_url, stop, lags))
        await asyncio.sleep(settle_s)
        fault_started = time.monotonic()
        first = await _kill_leader(cluster, js, out, avoid=None)
        await asyncio.sleep(settle_s)
        await asyncio.to_thread(cluster.start)  # the first comes back ...
        await _wait_stream(js, _all_current)  # ... and catches up before the next loss
        out.kills[-1]["back_after_ms"] = (time.monotonic() - fault_started) * 1000
        await asyncio.sleep(settle_s)
        await _kill_leader(cluster, js, out, avoid=first)
        await asyncio.sleep(settle_s)
        await asyncio.to_thread(cluster.start)
        await _wait_stream(js, _all_current)
        await asyncio.sleep(settle_s)
        stop.set()
        await load
    await _caught_up(database_url)
    sampler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sampler
    out.lag_before_ms = max((lag for t, lag in lags if t < fault_started), default=0.0)
    out.lag_pause_ms = max((lag for t, lag in lags if t >= fault_started), default=0.0)
    await _count(js, database_url, out)
    await nc.close()
    return out


async def _load(api: httpx.AsyncClient, rate: float, stop: asyncio.Event, out: LeaderLoss) -> None:
    """One create every 1/rate s, each in its own task, so a slow answer does not slow the rate."""

    async def create(i: int) -> None:
        try:
            response = await api.post("/workflows", json={"name": f"failover-{i}", "definition": DEFINITION})
        except httpx.HTTPError as error:
            out.refused[type(error).__name__] = out.refused.get(type(error).__name__, 0) + 1
            return
        if response.status_code == 201:
            out.acknowledged.append(response.json()["last_event_id"])
        else:
            out.refused[str(response.status_code)] = out.refused.get(str(response.status_code), 0) + 1

    tasks: list[asyncio.Task[None]] = []
    begin = time.monotonic()
    while not stop.is_set():
        tasks.append(asyncio.create_task(create(out.sent)))
        out.sent += 1
        await asyncio.sleep(max(0.0, begin + out.sent / rate - time.monotonic()))
    await asyncio.gather(*tasks)


async def _sample_lag(database_url: str, stop: asyncio.Event, lags: list[tuple[float, float]]) -> None:
    """Every 100 ms: the age (ms) of the oldest event the workflows projection has not applied."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
        while True:
            at, _ = await position(conn, WorkflowsProjection())  # type: ignore[arg-type]
            _, age = await backlog(conn, at)  # type: ignore[arg-type]
            lags.append((time.monotonic(), age * 1000))
            await asyncio.sleep(0.1)


async def _kill_leader(cluster: EmbeddedNatsCluster, js: Any, out: LeaderLoss, avoid: str | None) -> str:
    """SIGKILL the events stream's leader (or, if that is ``avoid``, another node)."""
    info = await _wait_stream(js, lambda i: bool(i.cluster and i.cluster.leader))
    leader = info.cluster.leader
    victim = leader if leader != avoid else next(p.name for p in info.cluster.replicas if p.name != avoid)
    t0 = time.monotonic()
    cluster.node_named(victim).kill()
    after = await _wait_stream(js, lambda i: bool(i.cluster and i.cluster.leader and i.cluster.leader != victim))
    out.kills.append(
        {
            "killed": victim,
            "was_leader": victim == leader,
            "new_leader": after.cluster.leader,
            "election_ms": (time.monotonic() - t0) * 1000,
        }
    )
    return str(victim)


def _all_current(info: Any) -> bool:
    replicas = (info.cluster.replicas or []) if info.cluster else []
    return bool(info.cluster and info.cluster.leader and len(replicas) == 2 and all(p.current for p in replicas))


async def _wait_stream(js: Any, ready: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(JetStreamError, TimeoutError, asyncio.TimeoutError):
            info = await js.stream_info(SUBJECTS.events_stream)
            if ready(info):
                return info
        if time.monotonic() > deadline:
            raise TimeoutError(f"events stream not ready after {timeout:.0f} s")
        await asyncio.sleep(0.1)


def _query(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


async def _caught_up(database_url: str, timeout: float = 120.0) -> None:
    """Until the relay and the workflows projection have reached the log's head."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(
            _query,
            database_url,
            "SELECT (SELECT coalesce(max(notification_id), 0) FROM event_dag),"
            " (SELECT coalesce(max(notification_id), 0) FROM relay_position),"
            f" (SELECT notification_id FROM {WorkflowsProjection.schema()}.tracking)",
        )
        head, relayed, projected = rows[0]
        if relayed >= head and (projected or 0) >= head:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("relay or projector did not catch up with the log")


async def _count(js: Any, database_url: str, out: LeaderLoss) -> None:
    logged = [str(r[0]) for r in await asyncio.to_thread(_query, database_url, _LOG_ORDER)]
    out.log_events = len(logged)
    out.present = len(set(out.acknowledged) & set(logged))
    info = await js.stream_info(SUBJECTS.events_stream)
    sub = await js.pull_subscribe(
        SUBJECTS.all_events,
        stream=SUBJECTS.events_stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    published: list[str] = []
    sequences: list[int] = []
    while len(published) < info.state.messages:
        for msg in await sub.fetch(500, timeout=10):
            sequences.append(msg.metadata.sequence.stream)
            published.append((msg.headers or {})["Nats-Msg-Id"])
    out.in_stream = len(published)
    out.duplicated = len(published) - len(set(published))
    out.stream_matches_log = published == logged and sequences == sorted(sequences)


_LOG_ORDER = "SELECT event_id FROM event_dag ORDER BY notification_id"


def _read_model(database_url: str) -> list[tuple[Any, ...]]:
    return _query(
        database_url, f"SELECT * FROM {WorkflowsProjection.schema()}.workflows ORDER BY tenant_id, workflow_id"
    )


def _with_db(url: str, name: str) -> str:
    """The same server's database ``name`` (a URL: Quipu's roles parse QUIPU_DATABASE_URL as one)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def nats_failover_phase(ctx: Context) -> Outcome:
    """The bench phase: one run on a fresh database of the bench's Postgres."""
    name = f"quipu_failover_{os.getpid()}"
    admin = _with_db(ctx.database_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="quipu-bench-failover-") as work:
        run = run_leader_loss(_with_db(ctx.database_url, name), Path(work))
    elections = ", ".join(f"{k['election_ms']:.0f}" for k in run.kills)
    note = (
        f"{run.sent} commands at 20/s, {len(run.acknowledged)} acknowledged, {run.in_stream} in the stream"
        f" ({run.duplicated} duplicated, log order {'kept' if run.stream_matches_log else 'BROKEN'});"
        f" leader elections {elections} ms"
    )
    return Outcome(
        rows=[
            (
                f"NATS leader loss, 3 nodes R3: max append -> read-model lag ({note})",
                f"{run.lag_pause_ms:.0f} ms",
                f"{run.lag_before_ms:.0f} ms before the loss",
                "-",
            ),
        ],
        figures={
            "nats_leader_loss_lag_pause_ms": run.lag_pause_ms,
            "nats_leader_loss_lag_before_ms": run.lag_before_ms,
            "nats_leader_election_ms": max((k["election_ms"] for k in run.kills), default=None),
        },
    )
