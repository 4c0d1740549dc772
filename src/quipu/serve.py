"""Running the parts in one event loop: API (uvicorn), relay, projectors, orchestration.

Every part runs as a supervised role task (see :mod:`quipu.supervise`): if one dies, the
others stop and :func:`serve` raises :class:`~quipu.supervise.RoleFailed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator

import structlog
import uvicorn

from api.app import create_app
from bus.runtime import MAX_BACKOFF_SECONDS, pause
from domain.backoff import exponential_backoff
from quipu.health import postgres_check, start_health_server
from quipu.supervise import Roles
from quipu.tuning import tune_gc
from quipu.wiring import Wiring, build_store

log = structlog.get_logger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside our loop: signals belong to ``serve``, which stops every part in
    order (uvicorn's own capture would re-raise Ctrl-C after shutdown); ``on_started``
    runs the moment the socket accepts, before any request is served."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_started = on_started

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()


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
    api_socket: socket.socket | None = None,
    health_socket: socket.socket | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run the chosen parts until ``stop`` (or SIGINT/SIGTERM); raise ``RoleFailed`` if one died.

    ``api_socket`` is the bound socket the API serves on (required with ``api``);
    ``health_socket``, if given, serves ``/health``, ``/ready`` and ``/metrics`` for a process
    without the API. ``on_ready`` runs once every part has started and the API accepts.
    """
    if api and api_socket is None:
        raise ValueError("serving the API needs a bound socket")
    stop = stop or asyncio.Event()
    install_stop_handlers(stop)
    roles = Roles(stop)
    async with contextlib.AsyncExitStack() as resources:
        try:
            if health_socket is not None:  # first: probes answer while we wait for Postgres
                health = await start_health_server(health_socket, lambda: _role_checks(wiring, roles))
                resources.push_async_callback(_close_server, health)
            if (relay or run_projectors) and not await _log_tables_ready(wiring, stop):
                return  # stopped while waiting
            if relay:
                roles.start("relay", wiring.relay().run(stop))
            if run_projectors:
                for projector in wiring.projectors(projectors):
                    roles.start(f"projector:{projector.projection.name}", projector.run(stop))
                # The process that runs projectors also dispatches tasks and fires timers.
                for part in await resources.enter_async_context(wiring.orchestration()):
                    roles.start(_role_name(part), part(stop))
            if api:
                assert api_socket is not None
                await _serve_api(wiring, api_socket, roles, stop, on_ready)
            else:
                if on_ready is not None:
                    on_ready()
                await stop.wait()
        finally:
            stop.set()
            await roles.wait_stopped()  # before the resources the roles use close
    log.info("quipu_stopped", failed=roles.failed)
    roles.raise_if_failed()


async def _serve_api(
    wiring: Wiring,
    sock: socket.socket,
    roles: Roles,
    stop: asyncio.Event,
    on_ready: Callable[[], None] | None,
) -> None:
    async with wiring.api_context() as ctx:
        roles.start("reports", wiring.report_responder(ctx.executions, ctx.summarization).run(stop))
        config = uvicorn.Config(create_app(ctx), log_config=None, access_log=False, lifespan="on")
        server = _EmbeddedServer(config, on_ready)
        tune_gc()
        roles.start("api", server.serve(sockets=[sock]))
        await stop.wait()
        server.should_exit = True
        await roles.wait_stopped()  # the responder and the API use the store closed below


async def _log_tables_ready(wiring: Wiring, stop: asyncio.Event) -> bool:
    """Create the log's tables (as the API does) before roles read them; False if stopped.

    A relay or projector started before any API on a fresh database would otherwise die on
    "relation does not exist". While Postgres does not answer, wait (the probes say so)
    rather than exit: an outage is not a failure of this process.
    """
    failures = 0
    while not stop.is_set():
        check = await postgres_check(wiring.database_url)
        if check == "ok":
            await asyncio.to_thread(lambda: build_store(wiring.database_url, 1).close())
            return True
        failures += 1
        backoff = exponential_backoff(failures, 0.2, MAX_BACKOFF_SECONDS)
        log.warning("postgres_waiting", check=check, backoff=backoff)
        await pause(stop, backoff)
    return False


async def _role_checks(wiring: Wiring, roles: Roles) -> dict[str, str]:
    """Readiness of a role process: Postgres answers and every role task is alive."""
    dead = roles.dead()
    return {
        "postgres": await postgres_check(wiring.database_url),
        "roles": "ok" if not dead else "error: stopped: " + ", ".join(dead),
    }


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.wait_closed(), 5)


def _role_name(part: object) -> str:
    # Bound methods of Dispatcher/TimerRunner: "Dispatcher.run" -> "dispatcher".
    qualname = str(getattr(part, "__qualname__", "orchestration"))
    names = {"Dispatcher": "dispatcher", "TimerRunner": "timers", "Deliverer": "deliverer"}
    return names.get(qualname.split(".")[0], qualname)
