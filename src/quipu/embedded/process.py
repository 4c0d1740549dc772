"""Process handling shared by the embedded servers: ports, log tails, readiness probes, errors."""

from __future__ import annotations

import http.client
import socket
import urllib.request
from pathlib import Path
from typing import Final

__all__ = [
    "POLL_INTERVAL",
    "EmbeddedServiceError",
    "file_size",
    "free_port",
    "http_ok",
    "log_tail",
    "speaks_nats",
    "url_host",
]

#: How often the start/stop loops look at a server again.
POLL_INTERVAL: Final = 0.05
_LOG_TAIL_LINES: Final = 40


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started, stopped or reached."""


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def url_host(host: str) -> str:
    # IPv6 literals must be bracketed inside URLs.
    return f"[{host}]" if ":" in host else host


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now.

    The kernel picks it from the ephemeral range (so never 5432 or 4222). There is an
    unavoidable race until the server binds it; callers that choose ports automatically
    retry on "address already in use".
    """
    with socket.socket(family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_tail(path: Path, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines written to ``path`` after byte ``offset`` (for error messages)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return f"<{path} does not exist>"
    text = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:]) or f"<{path} is empty>"


# No proxy handlers: urllib honours HTTP(S)_PROXY, and no proxy should be asked for 127.0.0.1.
_DIRECT_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str) -> bool:
    try:
        with _DIRECT_HTTP.open(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # URLError/HTTPError are OSErrors
        return False


def speaks_nats(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a connection and greets with a NATS ``INFO`` line."""
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            return sock.recv(5) == b"INFO "
    except OSError:
        return False
