"""The worker helper: what an outside process imports to do Quipu's tasks.

    from quipu_client.worker import Task, run, worker

    @worker("summarize")
    async def summarize(task: Task) -> dict:
        return {"summary": task.input["text"][:100]}

    run(summarize)  # QUIPU_URL and QUIPU_API_KEY from the environment, or pass them

A worker needs only Quipu's URL and an API key with the ``worker`` scope: it asks Quipu for
NATS credentials that reach its own tenant's tasks of its agent types and nothing else,
and renews them before they expire (``quipu_client.worker.login``). Against a NATS without
authentication, ``nats_url`` and ``tenant`` may be given instead.

Workers of one agent type share a durable pull consumer on the task work-queue, so each
task goes to one of them. While the handler runs, the helper heartbeats: it tells
JetStream the message is in progress and tells Quipu the attempt is alive (the first
heartbeat records that the node started). A heartbeat answered 404/409 means the attempt
is over (timed out, cancelled, retried elsewhere): the handler is cancelled. The result
is reported with the attempt number, then the message is acked. If Quipu cannot be
reached the message is not acked, and JetStream redelivers it. Ctrl-C/SIGTERM stops
fetching, lets running handlers finish for ``grace_seconds``, and hands back the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig

from quipu_client.nats_connect import NatsEndpoint, connect_nats
from quipu_client.streams import ensure_work_streams
from quipu_client.subjects import Subjects
from quipu_client.wire import Report, ReportReply, Task
from quipu_client.worker.login import WorkerLogin

__all__ = ["Task", "TaskFailed", "Worker", "run", "serve_workers", "worker"]

log = logging.getLogger("quipu_client.worker")
TaskHandler = Callable[[Task], Coroutine[Any, Any, dict[str, Any]]]
_decode_task = msgspec.json.Decoder(Task).decode
_decode_reply = msgspec.json.Decoder(ReportReply).decode
_encode = msgspec.json.Encoder().encode
OVER = (404, 409)  # the attempt is over: stop and do not report again


class TaskFailed(Exception):
    """Raise from a handler to fail the attempt with this message (any exception fails it)."""


@dataclass(frozen=True)
class Worker:
    agent_type: str
    handle: TaskHandler
    concurrency: int = 1


def worker(agent_type: str, *, concurrency: int = 1) -> Callable[[TaskHandler], Worker]:
    """Decorator: make ``handle(task) -> output dict`` the worker of ``agent_type``."""

    def wrap(handle: TaskHandler) -> Worker:
        return Worker(agent_type, handle, concurrency)

    return wrap


@dataclass
class _Session:
    nc: NATS
    subjects: Subjects
    tenant: str
    name: str
    heartbeat_seconds: float
    report_timeout: float
    on_receive: Callable[[Task], None] | None = None

    async def report(self, report: Report) -> ReportReply | None:
        """Send a report, retrying while Quipu is unreachable; None if it never answered."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.report_timeout
        delay = 0.1
        while True:
            try:
                reply = await self.nc.request(self.subjects.reports(self.tenant), _encode(report), timeout=2)
                return _decode_reply(reply.data)
            except (NoRespondersError, NatsTimeout, TimeoutError):
                if loop.time() + delay > give_up:
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)


async def serve_workers(
    workers: Sequence[Worker],
    *,
    quipu_url: str | None = None,
    api_key: str | None = None,
    nats_url: NatsEndpoint | str | None = None,
    tenant: str | None = None,
    prefix: str = "quipu",
    stop: asyncio.Event,
    name: str | None = None,
    heartbeat_seconds: float = 5.0,
    report_timeout: float = 30.0,
    grace_seconds: float = 30.0,
    on_receive: Callable[[Task], None] | None = None,
) -> None:
    """Run the workers until ``stop`` is set (the async entry point; ``run`` wraps it).
    ``on_receive`` sees each task as it arrives, before anything is reported (metrics)."""
    name = name or f"{socket.gethostname()}:{os.getpid()}"
    agent_types = list(dict.fromkeys(w.agent_type for w in workers))
    if nats_url is None:  # the usual way: Quipu's URL and a worker key, from the environment if not given
        quipu_url = quipu_url or os.environ.get("QUIPU_URL")
        api_key = api_key or os.environ.get("QUIPU_API_KEY")
    login: WorkerLogin | None = None
    if api_key is not None:
        if quipu_url is None:
            raise ValueError("api_key needs quipu_url (Quipu's URL; or set QUIPU_URL)")
        login = WorkerLogin(quipu_url, api_key, agent_types, name)
        grant = await login.login_when_reachable(stop)
        if grant is None:  # stopped before Quipu answered
            return
        tenant, subjects = grant.tenant_id, Subjects(grant.subject_prefix)
        nc = await login.connect()
    elif nats_url is not None and tenant is not None:
        subjects = Subjects(prefix)
        nc = await connect_nats(nats_url)
    else:
        raise ValueError(
            "give quipu_url and api_key (or set QUIPU_URL and QUIPU_API_KEY); for a NATS without"
            " authentication, nats_url and tenant"
        )
    session = _Session(nc, subjects, tenant, name, heartbeat_seconds, report_timeout, on_receive)
    renewal = asyncio.create_task(login.keep_renewed(stop)) if login is not None else None
    if renewal is not None:
        renewal.add_done_callback(lambda done: _stop_on_failure(done, stop))
    try:
        js = nc.jetstream(timeout=5)
        loops = []
        for w in workers:
            if login is not None and login.grant is not None:
                # The consumer was made by Quipu; these credentials may only pull from it.
                sub = await js.pull_subscribe_bind(login.grant.consumers[w.agent_type], stream=subjects.tasks_stream)
            else:
                await ensure_work_streams(js, subjects)  # a worker may start before Quipu
                sub = await js.pull_subscribe(
                    subjects.task(tenant, w.agent_type),
                    durable=f"workers_{tenant}_{w.agent_type}",
                    stream=subjects.tasks_stream,
                    config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=max(30.0, heartbeat_seconds * 3)),
                )
            loops += [asyncio.create_task(_fetch_loop(session, sub, w, stop)) for _ in range(w.concurrency)]
        log.info("worker_started agent_types=%s tenant=%s worker=%s", ",".join(agent_types), tenant, session.name)
        await stop.wait()
        _, pending = await asyncio.wait(loops, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
    finally:
        if renewal is not None:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await renewal
        with contextlib.suppress(Exception):
            await nc.close()  # every message was acked or handed back above
        log.info("worker_stopped worker=%s", session.name)


def _stop_on_failure(done: asyncio.Task[None], stop: asyncio.Event) -> None:
    """Quipu refused to renew the credentials (key revoked): stop rather than run blind."""
    if not done.cancelled() and done.exception() is not None:
        log.error("worker_credentials_refused error=%s", done.exception())
        stop.set()


async def _fetch_loop(session: _Session, sub: Any, w: Worker, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            msgs = await sub.fetch(1, timeout=1)
        except (NatsTimeout, TimeoutError):
            continue
        except NatsError as error:  # reconnecting (renewed credentials, a NATS restart): try again
            log.debug("worker_fetch_retrying error=%s", str(error) or type(error).__name__)
            await asyncio.sleep(0.2)
            continue
        for msg in msgs:
            await _work(session, msg, w)


async def _work(session: _Session, msg: Msg, w: Worker) -> None:
    task = _decode_task(msg.data)
    if session.on_receive is not None:
        session.on_receive(task)
    context = f"execution_id={task.execution_id} node_id={task.node_id} attempt={task.attempt}"

    def report(kind: str, **fields: Any) -> Report:
        return Report(
            type=kind,  # type: ignore[arg-type]
            execution_id=task.execution_id,
            node_id=task.node_id,
            attempt=task.attempt,
            worker=session.name,
            **fields,
        )

    first = await session.report(report("heartbeat"))
    if first is not None and first.status in OVER:
        log.info("task_stale detail=%s %s", first.detail, context)
        await msg.ack()
        return
    job = asyncio.create_task(w.handle(task))
    try:
        while True:
            done, _ = await asyncio.wait({job}, timeout=session.heartbeat_seconds)
            if done:
                break
            await msg.in_progress()
            beat = await session.report(report("heartbeat"))
            if beat is not None and beat.status in OVER:
                job.cancel()
                log.info("task_abandoned detail=%s %s", beat.detail, context)
                await msg.ack()
                return
    except asyncio.CancelledError:
        job.cancel()
        with contextlib.suppress(Exception):
            await msg.nak()  # stopping: another worker takes it
        raise
    error = job.exception()
    output = None if error else job.result()
    if error is None and not isinstance(output, dict):
        error = TaskFailed(f"the handler returned {type(output).__name__}, not a dict")
    if error is None:
        reply = await session.report(report("complete", output=output))
    else:
        reply = await session.report(report("fail", error=f"{type(error).__name__}: {error}"[:10_000]))
    if reply is None:
        log.warning("report_undelivered %s", context)
        await msg.nak(delay=1)
        return
    log.info("task_reported outcome=%s status=%s %s", "failed" if error else "completed", reply.status, context)
    await msg.ack()


def run(*workers: Worker, **options: Any) -> None:
    """Run workers in the foreground until Ctrl-C or SIGTERM (options: see ``serve_workers``).

    A program that configured no logging gets the helper's lines (``worker_started``, each
    task reported) on stderr, so a worker started from a terminal says what it does."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await serve_workers(workers, stop=stop, **options)

    asyncio.run(main())
