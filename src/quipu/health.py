"""``/health``, ``/ready`` and ``/metrics`` for processes without the API (``quipu relay``,
``quipu projector``), on a port of their own.

Deliberately tiny: a plain asyncio server answering three GETs, one request per connection,
so a role process does not carry a web framework for its probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg import AsyncConnection

log = structlog.get_logger(__name__)

Checks = Callable[[], Awaitable[dict[str, str]]]

_REQUEST_TIMEOUT_SECONDS = 5.0
_MAX_REQUEST_BYTES = 8192
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


async def postgres_check(database_url: str) -> str:
    """``ok`` when Postgres answers a query within a few seconds, else the error's type."""
    try:
        async with asyncio.timeout(3):
            conn = await AsyncConnection.connect(database_url, autocommit=True, connect_timeout=2)
            async with conn:
                await conn.execute("SELECT 1")
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"


async def start_health_server(sock: socket.socket, checks: Checks) -> asyncio.Server:
    """Serve the probes on the already bound ``sock``; ``checks`` decides readiness."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await _respond(reader, checks)
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass  # the prober went away or never finished its request
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, sock=sock, limit=_MAX_REQUEST_BYTES)
    host, port = sock.getsockname()[:2]
    log.info("health_listening", host=host, port=port, paths=["/health", "/ready", "/metrics"])
    return server


async def _respond(reader: asyncio.StreamReader, checks: Checks) -> tuple[int, str, bytes]:
    try:
        async with asyncio.timeout(_REQUEST_TIMEOUT_SECONDS):
            request = await reader.readuntil(b"\r\n\r\n")
        method, target, _version = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return _json(400, {"title": "Bad Request", "status": 400})
    if method != "GET":
        return _json(405, {"title": "Method Not Allowed", "status": 405})
    path = target.split("?", 1)[0]
    if path == "/health":
        return _json(200, {"status": "ok"})
    if path == "/ready":
        results = await checks()
        ok = all(value == "ok" for value in results.values())
        return _json(200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": results})
    if path == "/metrics":
        return 200, CONTENT_TYPE_LATEST, generate_latest()
    return _json(404, {"title": "Not Found", "status": 404, "detail": f"no {path} here"})


def _json(status: int, document: dict[str, object]) -> tuple[int, str, bytes]:
    media = "application/problem+json" if status >= 400 and "title" in document else "application/json"
    return status, media, json.dumps(document).encode()
