"""``Quipu-Log-Position``: the log position a command reached, on its response.

Every request that may change something (not GET, HEAD or OPTIONS) collects the
notification ids its commands appended (``commands.log_position``); when there were any,
the response carries the highest. A client that then reads from another process or a
replica can wait until the read model has applied that position.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from commands import log_position

HEADER = b"quipu-log-position"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class LogPositionHeader:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") in _READS:
            await self.app(scope, receive, send)
            return
        holder = log_position.track()

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start":
                reached = log_position.position(holder)
                if reached is not None:
                    message["headers"] = [*message.get("headers", []), (HEADER, str(reached).encode())]
            await send(message)

        await self.app(scope, receive, send_with_position)
