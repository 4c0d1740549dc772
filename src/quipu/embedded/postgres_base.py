"""The state of one embedded PostgreSQL cluster and the steps that create and launch it.

:class:`quipu.embedded.postgres.EmbeddedPostgres` adds the lifecycle (start, stop, kill, reuse
of a running server) on top; the split keeps each file readable.
"""

from __future__ import annotations

import math
import os
import pwd
import re
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

import psycopg
import structlog
from psycopg import sql

from quipu.embedded.binaries import postgres_bin_dir
from quipu.embedded.pg_account import Account, chown_tree, grant_install_access, grant_traverse, run
from quipu.embedded.pg_pidfile import read_pidfile
from quipu.embedded.process import POLL_INTERVAL, EmbeddedServiceError, file_size, free_port, log_tail, url_host
from quipu.embedded_auth import PASSWORD_FILE, hba_trusts, hba_with_passwords, initdb_pwfile

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SUPERUSER", "PostgresServer"]

log = structlog.get_logger(__name__)

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


class PostgresServer:
    """Paths, settings, port and password of one cluster, and how to create and launch it.

    Arguments as for :class:`quipu.embedded.postgres.EmbeddedPostgres`.
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

    def database_url(self, name: str) -> str:
        """URL of database ``name`` on this server (it need not exist)."""
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedPostgres has not been started")
        host = url_host(self.host)
        secret = quote(self.password, safe="")
        return f"postgresql://{SUPERUSER}:{secret}@{host}:{self._port}/{quote(name, safe='')}"

    # -- creating and launching the cluster ----------------------------------------------

    def _prepare_dirs(self, account: Account | None) -> None:
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_path.touch(exist_ok=True)
        if account is None:
            return
        grant_install_access(self._bin_dir.parent)
        grant_traverse(self.data_dir)
        if self.pgdata.stat().st_uid != account.uid:
            # A pgdata created by another user (e.g. an earlier run as root by other tooling);
            # Postgres refuses to run on a data directory it does not own.
            chown_tree(self.pgdata, account)
        # pg_ctl opens the log as the service account; data_dir itself stays ours.
        os.chown(self.log_path, account.uid, account.gid)

    def _initdb(self, account: Account | None) -> None:
        owner = (account.uid, account.gid) if account else None
        with initdb_pwfile(self.data_dir, self.password, owner) as pwfile:
            self._initdb_with(account, pwfile)

    def _initdb_with(self, account: Account | None, pwfile: Path) -> None:
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
            rc, output = run(
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

    def _launch(self, account: Account | None) -> int:
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
            log_offset = file_size(self.log_path)
            rc, output = run(
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
                info = read_pidfile(self.pgdata)
                log.info(
                    "embedded_postgres_started",
                    pid=info.pid if info else None,
                    host=self.host,
                    port=port,
                    pgdata=str(self.pgdata),
                )
                return port
            tail = log_tail(self.log_path, log_offset)
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
                        f"--- {self.log_path} ---\n{log_tail(self.log_path)}"
                    ) from exc
                time.sleep(POLL_INTERVAL)

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
        wrong = f"postgresql://{SUPERUSER}:not-the-password@{url_host(self.host)}:{self._port}/postgres"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                psycopg.connect(wrong, connect_timeout=2).close()
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    return
            time.sleep(POLL_INTERVAL)
        raise EmbeddedServiceError(f"postgres for {self.pgdata} still lets clients in without a password")
