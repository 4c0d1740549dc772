"""Running the parts in one event loop: API (uvicorn), relay and projectors."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import structlog
import uvicorn

from api.app import create_app
from quipu.tuning import tune_gc
from quipu.wiring import Wiring

log = structlog.get_logger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: signals belong to ``serve``, which stops every part in
    order; uvicorn's own capture would re-raise Ctrl-C after shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def serve(
    wiring: Wiring,
    *,
    api: bool = True,
    relay: bool = True,
    projectors: list[str] | None = None,
    run_projectors: bool = True,
    host: str = "127.0.0.1",
    port: int = 8000,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
) -> None:
    stop = stop or asyncio.Event()
    install_stop_handlers(stop)
    tasks: list[asyncio.Task[None]] = []
    if relay:
        tasks.append(asyncio.create_task(wiring.relay().run(stop), name="relay"))
    if run_projectors:
        for projector in wiring.projectors(projectors):
            tasks.append(asyncio.create_task(projector.run(stop), name=f"projector:{projector.projection.name}"))
    async with contextlib.AsyncExitStack() as resources:
        if run_projectors:  # the process that runs projectors also dispatches tasks and fires timers
            for part in await resources.enter_async_context(wiring.orchestration()):
                tasks.append(asyncio.create_task(part(stop), name=getattr(part, "__qualname__", "orchestration")))
        await _serve(wiring, api, host, port, stop, started, tasks)


async def _serve(
    wiring: Wiring,
    api: bool,
    host: str,
    port: int,
    stop: asyncio.Event,
    started: asyncio.Event | None,
    tasks: list[asyncio.Task[None]],
) -> None:
    try:
        if api:
            async with wiring.api_context() as ctx:
                reports = asyncio.create_task(wiring.report_responder(ctx.executions).run(stop), name="reports")
                config = uvicorn.Config(
                    create_app(ctx), host=host, port=port, log_config=None, access_log=False, lifespan="on"
                )
                server = _EmbeddedServer(config)
                tune_gc()
                serving = asyncio.create_task(server.serve(), name="api")
                while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers no event
                    await asyncio.sleep(0.05)
                if serving.done():
                    await serving  # raises the bind error, for instance
                if started:
                    started.set()
                await stop.wait()
                server.should_exit = True
                await serving
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(reports, 10)  # before the store it uses closes
        else:
            if started:
                started.set()
            await stop.wait()
    finally:
        stop.set()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)
        log.info("quipu_stopped")
