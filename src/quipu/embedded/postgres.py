"""An embedded PostgreSQL cluster: started with ``pg_ctl`` as a daemon, reused across processes."""

from __future__ import annotations

import contextlib
import fcntl
import math
import time
from typing import TYPE_CHECKING, Literal, Self

import psutil
import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg import sql

from quipu.embedded.pg_account import run, service_account
from quipu.embedded.pg_pidfile import PidFile, is_server_process, read_pidfile, server_processes
from quipu.embedded.postgres_base import PostgresServer
from quipu.embedded.process import POLL_INTERVAL, EmbeddedServiceError, log_tail
from quipu.embedded_auth import load_or_create_password

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = ["EmbeddedPostgres", "StopMode"]

log = structlog.get_logger(__name__)

StopMode = Literal["smart", "fast", "immediate"]


class EmbeddedPostgres(PostgresServer):
    """A PostgreSQL cluster under ``data_dir``, served on TCP ``host:port``.

    The server is a daemon (started with ``pg_ctl``), not a child of this process: it keeps
    running after the process exits and a later :meth:`start` on the same ``data_dir``, from
    any process, reuses it. Call :meth:`stop` (or use the context manager) to shut it down.

    Clients authenticate with SCRAM as ``postgres`` with the password kept in
    ``data_dir/password``; :attr:`url` and :meth:`database_url` carry it.

    Args:
        data_dir: Folder for the cluster (``pgdata/``), its password, its log and a lock file.
        port: TCP port; by default a free one is picked on first start and reused on restart.
        host: Address to listen on; loopback by default.
        extra_settings: Additional ``postgresql.conf`` settings, e.g. ``{"fsync": "off"}`` for
            throwaway test clusters; they override the defaults.
        timeout: Seconds to wait for start-up, shutdown and readiness.
    """

    @property
    def running(self) -> bool:
        """Whether a postmaster is serving this data dir (started by us or anyone else)."""
        return self._live_postmaster() is not None

    def start(self) -> str:
        """Initialise the cluster if needed, start it (or reuse a running one); return its URL.

        Idempotent: if a postmaster already serves this data dir it is reused and its port
        (from ``postmaster.pid``) wins over the requested one. A ``postmaster.pid`` left behind
        by a crash is detected and removed.
        """
        with self._locked():
            account = service_account()
            self._password = load_or_create_password(self.password_path)
            running = self._wait_for_settled_postmaster()
            if running is not None:
                if self._requested_port not in (None, running.port):
                    log.warning(
                        "embedded_postgres_port_mismatch",
                        requested=self._requested_port,
                        running=running.port,
                    )
                self._port = running.port
                log.info(
                    "embedded_postgres_reused",
                    pid=running.pid,
                    port=running.port,
                    pgdata=str(self.pgdata),
                )
            else:
                self._clear_stale_pidfile()
                self._prepare_dirs(account)
                if not (self.pgdata / "PG_VERSION").is_file():
                    self._initdb(account)
                self._port = self._launch(account)
            self._wait_accepting()
            self._require_password()
        return self.url

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                # CREATE DATABASE has no IF NOT EXISTS; a concurrent creator can still win the
                # race between the check and the create, which is fine.
                with contextlib.suppress(pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    log.info("embedded_postgres_database_created", database=name, port=self._port)
        return self.database_url(name)

    def stop(self, *, mode: StopMode = "fast") -> None:
        """Shut the server down with ``pg_ctl stop -m mode``; no-op if it is not running."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"invalid shutdown mode {mode!r}")
        if not self.pgdata.is_dir():
            return
        with self._locked():
            if self._live_postmaster() is None:
                return
            rc, output = run(
                [
                    str(self._bin_dir / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.pgdata),
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    str(math.ceil(self.timeout)),
                ],
                account=service_account(),
                timeout=self.timeout + 10,
            )
            if rc != 0 and self._live_postmaster() is not None:
                raise EmbeddedServiceError(f"pg_ctl stop failed (exit {rc}):\n{output}")
        log.info("embedded_postgres_stopped", mode=mode, port=self._port, pgdata=str(self.pgdata))

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children, simulating a crash (fault tests).

        Killing the children too (rather than letting them notice the postmaster's death)
        makes the crash deterministic and guarantees nothing still holds the old shared memory
        when :meth:`start` runs next. Data already handed to the OS survives, as with any
        process crash; ``synchronous_commit=off`` transactions may be lost.
        """
        info = read_pidfile(self.pgdata)
        postmaster_pid = info.pid if info else None
        procs = server_processes(self.pgdata)
        # Postmaster first, so it cannot react to its children dying by spawning new ones.
        procs.sort(key=lambda proc: proc.pid != postmaster_pid)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self._wait_until_noserver_processes("killing")
        if procs:
            log.warning("embedded_postgres_killed", pid=postmaster_pid, pgdata=str(self.pgdata))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop for this data dir across threads and processes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # flock locks belong to the open file description, so each call opening its own handle
        # also excludes other threads of this process; closing the file releases the lock.
        with (self.data_dir / ".postgres.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def _live_postmaster(self) -> PidFile | None:
        """The pid file of a live postmaster for our pgdata; None if none (or it is stale)."""
        info = read_pidfile(self.pgdata)
        if info is None or info.pid is None:
            return None
        try:
            proc = psutil.Process(info.pid)
        except psutil.Error:
            return None
        return info if is_server_process(proc, self.pgdata) else None

    def _wait_for_settled_postmaster(self) -> PidFile | None:
        """A ready postmaster to reuse, or None; waits out one that is starting or stopping."""
        deadline = time.monotonic() + self.timeout
        while True:
            info = self._live_postmaster()
            if info is None:
                return None
            if info.status == "ready":
                if info.port is None or not info.listen_address:
                    # E.g. started by the wheel's PostgresServer: unix socket only. Reusing it
                    # would hand out a URL that points at some other server (or nothing).
                    raise EmbeddedServiceError(f"a postgres (pid {info.pid}) serves {self.pgdata} without TCP; stop it")
                return info
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"postgres (pid {info.pid}) for {self.pgdata} stuck in state "
                    f"{info.status!r}:\n{log_tail(self.log_path)}"
                )
            time.sleep(POLL_INTERVAL)

    def _wait_until_noserver_processes(self, why: str) -> None:
        deadline = time.monotonic() + self.timeout
        while leftovers := server_processes(self.pgdata):
            if time.monotonic() > deadline:
                pids = sorted(proc.pid for proc in leftovers)
                raise EmbeddedServiceError(f"postgres processes {pids} still use {self.pgdata} after {why}; stop them")
            time.sleep(POLL_INTERVAL)

    def _clear_stale_pidfile(self) -> None:
        """Remove a ``postmaster.pid`` whose postmaster is gone.

        Postgres' own staleness check is ``kill(pid, 0)``, which is fooled by PID reuse
        (routine in containers, where PIDs restart from 1 after a crash) and by un-reaped
        zombies, and then it refuses to start. Removing the file is only safe once no process
        of the old server is left attached to its shared memory: those orphans exit by
        themselves shortly after the postmaster dies, so wait for them first.
        """
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        self._wait_until_noserver_processes("its postmaster died")
        pidfile.unlink(missing_ok=True)
        log.warning("embedded_postgres_stale_pidfile_removed", pgdata=str(self.pgdata))
