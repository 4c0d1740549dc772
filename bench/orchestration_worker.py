"""The no-op worker process of the orchestration bench (``python -m bench.orchestration_worker``).

It runs the worker helper for both agent types, records when each task arrives (through
the helper's ``on_receive`` hook, before its first heartbeat) and when its handler runs,
and pull-consumes the baseline's ping messages. It prints "ready", then its measurements
as one JSON line when stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import msgspec
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig

from bus.runtime import NatsEndpoint, connect_nats
from bus.subjects import Subjects
from quipu_client.wire import Task
from quipu_client.worker import Worker, serve_workers

WORKER_CONCURRENCY = 8


async def _worker_process(config: dict[str, Any]) -> dict[str, Any]:
    """No-op workers plus the baseline's pull consumer; stops when stdin closes."""
    nats = NatsEndpoint(config["nats_url"], config.get("nats_credentials"))
    received: dict[str, tuple[str, str, float]] = {}  # task id -> (execution, node, ms after scheduled)
    handled: dict[str, float] = {}
    sizes: list[int] = []

    def on_receive(task: Task) -> None:
        received.setdefault(str(task.task_id), (str(task.execution_id), task.node_id, (time.time() - ts(task)) * 1000))
        sizes.append(len(msgspec.json.encode(task)))

    def ts(task: Task) -> float:
        return task.scheduled_at.timestamp()

    async def noop(task: Task) -> dict[str, Any]:
        handled.setdefault(str(task.task_id), (time.time() - ts(task)) * 1000)
        return {}

    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve_workers(
            [Worker(t, noop, WORKER_CONCURRENCY) for t in ("noop_a", "noop_b")],
            nats_url=nats,
            tenant=config["tenant"],
            prefix=config["prefix"],
            stop=stop,
            grace_seconds=5,
            on_receive=on_receive,
        )
    )
    nc = await connect_nats(nats)
    js = nc.jetstream(timeout=5)
    sub = await js.pull_subscribe(
        config["ping_subject"],
        durable="ping",
        stream=config["ping_stream"],
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
    )
    pings: list[float] = []

    async def consume_pings() -> None:  # the same fetch loop as the worker helper's
        while not stop.is_set():
            with contextlib.suppress(NatsTimeout, TimeoutError):
                for msg in await sub.fetch(1, timeout=1):
                    now = time.time()
                    pings.append((now - ts(msgspec.json.decode(msg.data, type=Task))) * 1000)
                    await msg.ack()

    pinging = asyncio.create_task(consume_pings())
    subjects = Subjects(config["prefix"])
    for agent_type in ("noop_a", "noop_b"):
        durable = f"workers_{config['tenant']}_{agent_type}"
        for _ in range(600):
            with contextlib.suppress(Exception):
                await js.consumer_info(subjects.tasks_stream, durable)
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"worker consumer {durable} never appeared")
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    eof = asyncio.create_task(reader.read())
    await asyncio.wait({eof, serving}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await asyncio.wait_for(serving, 30)  # raises what stopped the workers early, if anything
    await asyncio.wait_for(pinging, 10)
    eof.cancel()
    await nc.close()
    tasks = [[e, node, ms, handled[t]] for t, (e, node, ms) in received.items() if t in handled]
    return {"tasks": tasks, "pings": pings, "task_bytes": round(sum(sizes) / max(len(sizes), 1))}


def main(raw: str) -> None:
    import logging

    import structlog

    # stdout carries "ready" and the result; the helper's logs go to stderr, warnings only.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    print(json.dumps(asyncio.run(_worker_process(json.loads(raw)))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
