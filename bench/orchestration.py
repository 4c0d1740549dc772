"""4. Orchestration: executions per second, and dependency completion -> next task at the worker.

Setup: the relay, the task dispatcher (``Wiring.orchestration``) and the report responder run
in this process, as ``quipu up`` runs them (projectors are not running); no-op workers run in
a separate process (``python -m bench.orchestration_worker <config>``), as workers would.
The workflow has ten nodes: start -> a -> (b, c, d) -> e -> (f, g) -> h -> end, with a, b, c, d
on one agent type and e, f, g, h on another. Each task node costs two reports: the worker's
first heartbeat (node started) and its completion (which schedules what it unblocks).

Throughput: N runs in ROUNDS rounds; each round starts its runs from 4 concurrent starters
and is timed from the first start until its last ``execution.succeeded`` reaches NATS. The
peer (``peer(k)``: LangGraph in-process, 1 thread, ``bench.langgraph_peer``) runs as many
runs between the rounds, alternating with Quipu (the first round Quipu first, the next
the peer first, ...), so both see the same machine. ``drive_directly`` drives one run by
direct ``ExecutionService`` calls (start, then heartbeat + complete per ready node), with no
NATS, dispatcher or worker in the loop: ``bench.peers`` measures that against the peer.

Latency: a few runs with two in flight. The worker records, per task of b..h (whose
dependency is a task), its receive time minus ``Task.scheduled_at`` (the node_scheduled
event's timestamp, taken in the completion's command, before its commit). Baseline at the
same time: Task messages of the same shape are published to a stream of their own on the
same NATS, stamped just before ``js.publish``, and pull-consumed in the worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from bench.common import Progress, log
from bus.runtime import NatsEndpoint, connect_nats, endpoint
from bus.subjects import Subjects
from commands.executions import ExecutionService
from commands.workflows import WorkflowInput, WorkflowService
from domain.aggregate import CommandContext
from domain.envelope import EventEnvelope
from domain.execution import Execution
from domain.execution_status import ExecutionStatus
from domain.scheduling import NodeStatus
from domain.workflow_graph import Edge, Node, WorkflowDefinition
from quipu.wiring import Wiring
from quipu_client.wire import Task

TENANT, DIRECT_TENANT = "benchorch", "benchdirect"
SHAPE = {"a": "bcd", "b": "e", "c": "e", "d": "e", "e": "fg", "f": "h", "g": "h"}
TASKS = "abcdefgh"
AFTER_TASK = frozenset("bcdefgh")  # nodes whose dependency is a task node a worker completed
DEFINITION = WorkflowDefinition(
    nodes=[
        Node(id="start", type="start"),
        *(Node(id=n, agent_type="noop_a" if n in "abcd" else "noop_b") for n in TASKS),
        Node(id="end", type="end"),
    ],
    edges=[
        Edge(source="start", target="a"),
        *(Edge(source=s, target=t) for s, targets in SHAPE.items() for t in targets),
        Edge(source="h", target="end"),
    ],
)
INPUT = {"topic": "bench", "note": "a no-op run"}
STARTERS, IN_FLIGHT, WARM_UP, PING_EVERY_S, ROUNDS = 4, 2, 4, 0.01, 4
FINISHED_KINDS = ("execution.succeeded", "execution.failed", "execution.timed_out", "execution.cancelled")
_decode_envelope = msgspec.json.Decoder(EventEnvelope).decode
ROOT = Path(__file__).resolve().parents[1]  # where `python -m bench.orchestration` runs
Peer = Callable[[int], float]  # runs k runs of the same workflow elsewhere; returns the seconds


@dataclass
class OrchestrationResult:
    executions: int
    seconds: float
    peer_seconds: float | None  # the same number of LangGraph runs, 1 thread; None without the peer
    peer_error: str | None
    events_per_execution: float
    latency_executions: int
    handoff_ms: list[float]  # node_scheduled timestamp -> task received by the worker
    handler_ms: list[float]  # ... -> handler called (after the started heartbeat's round trip)
    ping_ms: list[float]  # baseline: stamp -> js.publish -> pull-consumed in the worker process
    message_bytes: int

    @property
    def eps(self) -> float:
        return self.executions / self.seconds

    @property
    def peer_eps(self) -> float | None:
        return None if self.peer_seconds is None else self.executions / self.peer_seconds


def create_workflow(workflows: WorkflowService, tenant: str) -> uuid.UUID:
    data = WorkflowInput(name="bench ten-node flow", description="no-op tasks", definition=DEFINITION, metadata={})
    workflow, _ = workflows.create(CommandContext(tenant, "bench"), data)
    return workflow.id


def drive_directly(executions: ExecutionService, workflow_id: uuid.UUID) -> None:
    """One run, as the workers would drive it, by calling the command side directly."""
    ctx = CommandContext(DIRECT_TENANT, "worker:bench-direct")
    execution, _ = executions.start(ctx, workflow_id, version=None, input=dict(INPUT))
    while execution.status is not ExecutionStatus.SUCCEEDED:
        ready = [n for n in TASKS if execution.nodes.get(n) is NodeStatus.SCHEDULED]
        if not ready or execution.status is not ExecutionStatus.RUNNING:
            raise RuntimeError(f"direct run stuck: {execution.status.value}, nodes {execution.nodes}")
        for node in ready:
            attempt = execution.attempts[node]

            def beat(e: Execution, c: CommandContext, node: str = node, attempt: int = attempt) -> None:
                e.heartbeat(c, node, attempt, "bench-direct")

            def done(e: Execution, c: CommandContext, node: str = node, attempt: int = attempt) -> None:
                e.complete_node(c, node, {}, attempt)

            executions.act(ctx, execution.id, beat)
            execution = executions.act(ctx, execution.id, done)


class _Finished:
    """Runs reaching a terminal state, as the relay publishes them (no polling of Postgres)."""

    def __init__(self) -> None:
        self.succeeded: dict[uuid.UUID, float] = {}
        self.other: list[str] = []  # a no-op run that did not succeed is a bug, not a figure
        self.changed = asyncio.Event()

    async def on_message(self, msg: Any) -> None:
        envelope = _decode_envelope(msg.data)
        if envelope.kind == "execution.succeeded":
            self.succeeded[envelope.stream_id] = time.perf_counter()
        else:
            self.other.append(f"run {envelope.stream_id} ended {envelope.kind}: {envelope.payload}")
        self.changed.set()

    async def wait_for(self, ids: set[uuid.UUID], label: str, stall_s: float = 30.0, show: bool = True) -> float:
        """Until every id succeeded; fails when nothing finishes for ``stall_s``."""
        progress = Progress(label, len(ids)) if show else None
        while True:
            if self.other:
                raise RuntimeError(self.other[0])
            done = len(ids & self.succeeded.keys())
            if progress:
                progress.update(done)
            if done == len(ids):
                if progress:
                    progress.done()
                return max(self.succeeded[i] for i in ids)
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), stall_s)
            except TimeoutError:
                raise TimeoutError(
                    f"{label}: {done}/{len(ids)} runs succeeded, none for {stall_s:.0f} s"
                    " (relay, dispatcher, report responder or workers stuck)"
                ) from None


async def _spawn_workers(config: dict[str, Any]) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.orchestration_worker", json.dumps(config),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip


async def _until_ready(workers: asyncio.subprocess.Process) -> None:
    assert workers.stdout is not None
    line = await asyncio.wait_for(workers.stdout.readline(), 60)
    if line.strip() != b"ready":
        raise RuntimeError(f"worker process did not start (exit code {await workers.wait()})")


async def _ping(js: Any, subject: str, stop: asyncio.Event) -> None:
    """Baseline traffic: Task messages shaped like the dispatcher's, stamped at publish."""
    while not stop.is_set():
        task = Task(
            task_id=uuid.uuid4(), tenant_id=TENANT, execution_id=uuid.uuid4(), workflow_id=uuid.uuid4(),
            node_id="e", node_name=None, agent_type="noop_b", attempt=1, input=dict(INPUT), config={},
            scheduled_at=datetime.now(UTC),
        )  # fmt: skip
        await js.publish(subject, msgspec.json.encode(task), headers={"Nats-Msg-Id": str(task.task_id)})
        await asyncio.sleep(PING_EVERY_S)


@dataclass
class _Rig:
    executions: ExecutionService
    flow: uuid.UUID
    finished: _Finished
    js: Any
    ping_subject: str
    workers: asyncio.subprocess.Process

    async def start(self) -> uuid.UUID:
        ctx = CommandContext(TENANT, "bench")
        run, _ = await asyncio.to_thread(self.executions.start, ctx, self.flow, version=None, input=dict(INPUT))
        return run.id

    async def stop_workers(self) -> dict[str, Any]:
        """Close the worker process's stdin: it stops and prints what it recorded."""
        assert self.workers.stdin is not None
        self.workers.stdin.close()
        out, _ = await asyncio.wait_for(self.workers.communicate(), 60)
        if self.workers.returncode != 0:
            raise RuntimeError(f"worker process exited with {self.workers.returncode}")
        return dict(json.loads(out.decode().strip().splitlines()[-1]))


@contextlib.asynccontextmanager
async def _running(wiring: Wiring, executions: ExecutionService, flow: uuid.UUID) -> AsyncIterator[_Rig]:
    """Relay, dispatcher and report responder here; the workers in their own process."""
    subjects = wiring.subjects
    async with await psycopg.AsyncConnection.connect(wiring.database_url, autocommit=True) as conn:
        # This fresh prefix's relay starts at the log's head, not at the earlier phases' events.
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS relay_position (name text PRIMARY KEY, notification_id bigint NOT NULL)"
        )
        await conn.execute(
            "INSERT INTO relay_position SELECT %s, coalesce(max(notification_id), 0) FROM quipu_events",
            (subjects.prefix,),
        )
    nc = await connect_nats(wiring.nats_url)
    js = nc.jetstream(timeout=5)
    ping_stream, ping_subject = f"{subjects.prefix.upper()}_PING", f"{subjects.prefix}.ping"
    await js.add_stream(
        StreamConfig(
            name=ping_stream, subjects=[ping_subject], retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE
        )
    )
    finished = _Finished()
    for kind in FINISHED_KINDS:
        await nc.subscribe(subjects.event(TENANT, kind), cb=finished.on_message)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(wiring.relay().run(stop)),
        asyncio.create_task(wiring.report_responder(executions).run(stop)),
    ]
    workers: asyncio.subprocess.Process | None = None
    try:
        async with wiring.orchestration() as parts:
            tasks += [asyncio.create_task(part(stop)) for part in parts]
            try:
                nats = endpoint(wiring.nats_url)
                config = {
                    "nats_url": nats.url,
                    "nats_credentials": nats.credentials,
                    "prefix": subjects.prefix,
                    "tenant": TENANT,
                }
                workers = await _spawn_workers({**config, "ping_stream": ping_stream, "ping_subject": ping_subject})
                await _until_ready(workers)
                yield _Rig(executions, flow, finished, js, ping_subject, workers)
            finally:
                stop.set()
                if workers is not None and workers.returncode is None:
                    workers.kill()
                    await workers.wait()
                for task in tasks:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(task, 15)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(ping_stream)
        await nc.close()


async def _throughput(rig: _Rig, n: int) -> float:
    """Seconds from the first of ``n`` starts until the last run succeeded."""
    ids: set[uuid.UUID] = set()

    async def starter(k: int) -> None:
        for _ in range(k, n, STARTERS):
            ids.add(await rig.start())

    t0 = time.perf_counter()
    await asyncio.gather(*(starter(k) for k in range(STARTERS)))
    return await rig.finished.wait_for(ids, "runs to succeeded") - t0


async def _alternating(rig: _Rig, n: int, peer: Peer | None) -> tuple[float, float | None, str | None]:
    """Quipu's and the peer's seconds for ``n`` runs each, in alternating rounds."""
    seconds, peer_seconds, peer_error = 0.0, 0.0, None
    rounds = [n // ROUNDS + (1 if k < n % ROUNDS else 0) for k in range(ROUNDS)]
    for k, m in enumerate(r for r in rounds if r):
        for side in ("quipu", "peer") if k % 2 == 0 else ("peer", "quipu"):
            if side == "quipu":
                seconds += await _throughput(rig, m)
            elif peer is not None and peer_error is None:
                try:
                    peer_seconds += await asyncio.to_thread(peer, m)
                except Exception as error:  # the peer failing leaves Quipu's figures standing
                    peer_error = f"{type(error).__name__}: {error}"
    return seconds, (None if peer is None or peer_error else peer_seconds), peer_error


async def _latency(rig: _Rig, n: int) -> set[uuid.UUID]:
    """``n`` runs, IN_FLIGHT at a time, with the baseline's pings published alongside."""
    ids: set[uuid.UUID] = set()
    stop_ping = asyncio.Event()
    ping = asyncio.create_task(_ping(rig.js, rig.ping_subject, stop_ping))

    async def closed_loop(k: int) -> None:
        for _ in range(k, n, IN_FLIGHT):
            run = await rig.start()
            ids.add(run)
            await rig.finished.wait_for({run}, "latency run", show=False)

    try:
        await asyncio.gather(*(closed_loop(k) for k in range(IN_FLIGHT)))
    finally:
        stop_ping.set()
        await asyncio.wait_for(ping, 10)
    return ids


async def _tally(database_url: str) -> tuple[int, int]:
    """Succeeded runs and execution events in the log (independent of what NATS said)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FILTER (WHERE kind = 'execution.succeeded'), count(*) FROM event_dag"
            " WHERE tenant_id = %s AND kind LIKE 'execution.%%'",
            (TENANT,),
        )
        row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def measure_async(
    database_url: str, nats_url: NatsEndpoint | str, n: int, latency_n: int, peer: Peer | None = None
) -> OrchestrationResult:
    wiring = Wiring(database_url, nats_url, Subjects("bench" + uuid.uuid4().hex[:8]))
    async with wiring.api_context() as ctx:
        flow = await asyncio.to_thread(create_workflow, ctx.workflows, TENANT)
        async with _running(wiring, ctx.executions, flow) as rig:
            warm = {await rig.start() for _ in range(WARM_UP)}
            await rig.finished.wait_for(warm, "warm-up runs", stall_s=60)
            alongside = " alternating with the peer's" if peer else ""
            log(f"  orchestration: {n} runs, {STARTERS} starters, workers in a separate process{alongside} ...")
            seconds, peer_seconds, peer_error = await _alternating(rig, n, peer)
            log(f"  handoff latency: {latency_n} runs, {IN_FLIGHT} in flight, baseline pings alongside ...")
            latency_ids = await _latency(rig, latency_n)
            seen = await rig.stop_workers()
    runs, events = await _tally(database_url)
    if runs != WARM_UP + n + latency_n:
        raise RuntimeError(f"the log holds {runs} succeeded runs, expected {WARM_UP + n + latency_n}")
    mine = {str(i) for i in latency_ids}
    samples = [s for s in seen["tasks"] if s[0] in mine and s[1] in AFTER_TASK]
    return OrchestrationResult(
        executions=n,
        seconds=seconds,
        peer_seconds=peer_seconds,
        peer_error=peer_error,
        events_per_execution=events / runs,
        latency_executions=latency_n,
        handoff_ms=[s[2] for s in samples],
        handler_ms=[s[3] for s in samples],
        ping_ms=seen["pings"],
        message_bytes=seen["task_bytes"],
    )


def measure(
    database_url: str, nats_url: NatsEndpoint | str, n: int, latency_n: int, peer: Peer | None = None
) -> OrchestrationResult:
    return asyncio.run(measure_async(database_url, nats_url, n, latency_n, peer))
