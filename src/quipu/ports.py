"""Binding listening sockets before anything is announced.

A process binds its port first and hands the bound socket to the server, so a port that is
taken fails fast with a clear message instead of after "Quipu is up" was printed.
"""

from __future__ import annotations

import errno
import socket
from typing import Final

import structlog

log = structlog.get_logger(__name__)

#: The API port `quipu up` prefers (and `quipu api` uses unless told otherwise).
DEFAULT_API_PORT: Final = 8000


class PortTaken(RuntimeError):
    """The requested port is in use by another process."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"port {port} on {host} is already in use by another process")
        self.host, self.port = host, port


def bind_tcp(host: str, port: int) -> socket.socket:
    """A TCP socket bound (not yet listening) to ``host:port``; port 0 picks a free one."""
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose protocol
    # says TCP, and without it a keep-alive client waits ~40 ms per request (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted connections
    # Lets a restart reuse the port while old connections sit in TIME_WAIT; on Linux it still
    # refuses a port another socket listens on, which is the check we want.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortTaken(host, port) from error
        raise
    return sock


def bind_api(host: str, port: int | None) -> socket.socket:
    """The API socket: ``port`` if given (taken is an error), else 8000 when free, else any free port."""
    if port is not None:
        return bind_tcp(host, port)
    try:
        return bind_tcp(host, DEFAULT_API_PORT)
    except PortTaken:
        sock = bind_tcp(host, 0)
        log.warning("api_default_port_taken", default=DEFAULT_API_PORT, port=bound_port(sock))
        return sock


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def http_url(host: str, port: int) -> str:
    """A URL clients can use for a server bound to ``host`` (wildcards become loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
