"""A per-credential request budget with ``X-RateLimit-*`` headers and 429 problems.

Fixed one-minute windows, counted per API process (several processes each allow the
budget; put a shared limiter in the ingress for a global one). Health, readiness and
metrics are exempt so probes are never throttled.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

EXEMPT = ("/health", "/ready", "/metrics")
WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app = app
        self.per_minute = per_minute
        self.windows: dict[str, tuple[int, int]] = {}

    def _identity(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                # Hash so the table never holds a usable credential.
                return hashlib.sha256(value).hexdigest()
        client = scope.get("client")
        return f"ip:{client[0] if client else '?'}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or self.per_minute <= 0 or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        identity = self._identity(scope)
        start, used = self.windows.get(identity, (window, 0))
        if start != window:
            start, used = window, 0
            if len(self.windows) > 100_000:
                self.windows = {k: v for k, v in self.windows.items() if v[0] == window}
        used += 1
        self.windows[identity] = (start, used)
        resets_at = (window + 1) * WINDOW_SECONDS
        reset = max(1, math.ceil(resets_at - now))
        headers = [
            (b"x-ratelimit-limit", str(self.per_minute).encode()),
            (b"x-ratelimit-remaining", str(max(0, self.per_minute - used)).encode()),
            # when the window ends, as a Unix timestamp (as the reference APIs give it);
            # Retry-After on a 429 says the same in seconds from now
            (b"x-ratelimit-reset", str(resets_at).encode()),
        ]
        if used > self.per_minute:
            await _too_many(scope, send, headers, reset)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _too_many(scope: Scope, send: Send, headers: list[tuple[bytes, bytes]], reset: int) -> None:
    import msgspec

    from api.problems import Problem

    request_id: Any = scope.get("state", {}).get("request_id", "")
    body = msgspec.json.encode(
        Problem(
            type="https://quipu.dev/problems/rate-limited",
            title="Too Many Requests",
            status=429,
            detail=f"request budget exhausted; retry in {reset} s",
            instance=scope["path"],
            trace_id=str(request_id),
        )
    )
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 429,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"retry-after", str(reset).encode()),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
