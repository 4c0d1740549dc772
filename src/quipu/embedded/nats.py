"""An embedded ``nats-server`` with JetStream, run as a child process."""

from __future__ import annotations

import atexit
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

import structlog

from bus.nats_auth import EVERYTHING, NatsAuthority, OperatorKeys
from bus.runtime import NatsEndpoint
from quipu.embedded.binaries import nats_server_binary
from quipu.embedded.nats_config import ClusterNode, config_text, operator_keys
from quipu.embedded.process import (
    POLL_INTERVAL,
    EmbeddedServiceError,
    file_size,
    free_port,
    http_ok,
    log_tail,
    speaks_nats,
    url_host,
)
from quipu.private_files import write_private

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["DEFAULT_NATS_MAX_PAYLOAD", "EmbeddedNats"]

log = structlog.get_logger(__name__)

#: NATS's own default is 1 MiB; Quipu's largest event must fit with room for headers.
DEFAULT_NATS_MAX_PAYLOAD: Final = 8 * 1024 * 1024


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
        keys: The operator keys to use (a cluster shares one set); default: kept in ``data_dir``.
        cluster: This server's name and routes when it is a node of a cluster.
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
        keys: OperatorKeys | None = None,
        cluster: ClusterNode | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.log_path = self.data_dir / "nats.log"
        self.config_path = self.data_dir / "nats.conf"
        self.credentials_path = self.data_dir / "operator.creds"
        self.signing_key_path = self.data_dir / "auth" / "account-signing.nk"
        self.max_payload = max_payload
        # Operator mode: keys generated once and kept in the data dir (0600); every client
        # needs a user JWT signed by the account's signing key (see bus.nats_auth).
        self.keys = keys or (operator_keys(self.data_dir / "auth" / "keys.json") if auth else None)
        self.cluster = cluster
        self.host = host
        self.timeout = timeout
        self._requested_port = port
        self._port = port
        self._monitor_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._launched: tuple[subprocess.Popen[bytes], int, int, int] | None = None  # proc, ports, log offset

    @property
    def port(self) -> int | None:
        """The client port, once known (given, or chosen by :meth:`start`)."""
        return self._port

    @property
    def monitor_url(self) -> str:
        """Base URL of the HTTP monitoring endpoint (``/healthz``, ``/jsz``, ...)."""
        if self._monitor_port is None:
            raise EmbeddedServiceError("EmbeddedNats has not been started")
        return f"http://{url_host(self.host)}:{self._monitor_port}"

    @property
    def url(self) -> str:
        """``nats://HOST:PORT``."""
        if self._port is None:
            raise EmbeddedServiceError("EmbeddedNats has not been started")
        return f"nats://{url_host(self.host)}:{self._port}"

    @property
    def running(self) -> bool:
        """Whether the server process started by this instance is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start nats-server (no-op if already running) and wait for JetStream; return the URL."""
        if self.running:
            return self.url
        attempts = 3
        for attempt in range(attempts):
            if self._requested_port is not None:
                port = self._requested_port
            elif attempt == 0 and self._port is not None:
                port = self._port  # same port as before, so clients reconnect
            else:
                port = free_port(self.host)
            self.launch(port)
            failure = self.wait_started()
            if failure is None:
                return self.url
            # Lost the race for a port chosen by free_port (client or monitoring): try again.
            if "address already in use" in failure.lower() and attempt + 1 < attempts:
                log.info("embedded_nats_port_taken", port=port)
                continue
            raise EmbeddedServiceError(failure)
        raise AssertionError("unreachable")  # pragma: no cover

    def launch(self, port: int | None = None) -> None:
        """Spawn nats-server without waiting for it; :meth:`wait_started` waits.

        A cluster node is healthy only once a quorum of its peers runs, so a cluster launches
        every node before it waits for any (see :mod:`quipu.embedded.nats_cluster`).
        """
        binary = nats_server_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = port or self._requested_port or self._port or free_port(self.host)
        monitor_port = free_port(self.host)
        log_offset = file_size(self.log_path)
        self._launched = (self._spawn(binary, port, monitor_port), port, monitor_port, log_offset)

    def wait_started(self) -> str | None:
        """Wait until the launched server is ready; None when it is, else why it is not."""
        if self._launched is None:
            raise EmbeddedServiceError("EmbeddedNats.wait_started() before launch()")
        proc, port, monitor_port, log_offset = self._launched
        self._launched = None
        failure = self._wait_ready(proc, port, monitor_port, log_offset)
        if failure is not None:
            return failure
        self._proc, self._port, self._monitor_port = proc, port, monitor_port
        # Unlike Postgres this is our child and nothing reuses it across processes, so don't
        # leak it when the interpreter exits.
        atexit.register(self.stop)
        log.info(
            "embedded_nats_started",
            pid=proc.pid,
            host=self.host,
            port=port,
            monitor_port=monitor_port,
            store_dir=str(self.data_dir / "jetstream"),
            server_name=self.cluster.server_name if self.cluster else None,
        )
        return None

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
        if self.keys is not None:
            write_private(self.credentials_path, self.keys.authority.mint("quipu-operator", EVERYTHING))
            # For Quipu processes started apart (quipu api / relay / projector): see env().
            self.signing_key_path.parent.mkdir(parents=True, exist_ok=True)
            write_private(self.signing_key_path, self.keys.signing_seed + "\n")
        write_private(self.config_path, config_text(max_payload=self.max_payload, keys=self.keys, cluster=self.cluster))

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
        health_url = f"http://{url_host(self.host)}:{monitor_port}/healthz"
        deadline = time.monotonic() + self.timeout
        while True:
            rc = proc.poll()
            if rc is not None:
                return (
                    f"nats-server exited with code {rc} while starting on {self.host}:{port}:\n"
                    f"--- {self.log_path} ---\n{log_tail(self.log_path, log_offset)}"
                )
            if http_ok(health_url) and speaks_nats(self.host, port):
                return None
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return (
                    f"nats-server on {self.host}:{port} not ready after {self.timeout:.0f}s:\n"
                    f"--- {self.log_path} ---\n{log_tail(self.log_path, log_offset)}"
                )
            time.sleep(POLL_INTERVAL)
