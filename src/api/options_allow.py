"""``OPTIONS`` names the methods a path really has, as a 405 on the same path does.

Litestar builds each path's automatic ``OPTIONS`` answer from the first handlers registered
for it, before the handlers of the same path are merged into one route: ``OPTIONS
/api/v1/workflows`` said ``OPTIONS, POST`` while ``GET`` works and a 405 there lists all
three. This middleware rewrites the ``Allow`` header of ``OPTIONS`` answers from the routes
the app really has (the table is built on the first ``OPTIONS`` request).
"""

from __future__ import annotations

from typing import Any

from litestar.enums import ScopeType
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send


class OptionsAllow:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._allow: dict[str, bytes] | None = None

    def _table(self, litestar_app: Any) -> dict[str, bytes]:
        if self._allow is None:
            methods: dict[str, set[str]] = {}
            for route in litestar_app.routes:
                if isinstance(route, HTTPRoute):
                    methods.setdefault(route.path_format, set()).update(route.methods)
            self._allow = {path: ", ".join(sorted(found)).encode() for path, found in methods.items()}
        return self._allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return
        allow = self._table(scope["app"]).get(str(scope.get("path_template", "")))

        async def send_allow(message: Message) -> None:
            if allow is not None and message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message["headers"] = [*headers, (b"allow", allow)]
            await send(message)

        await self.app(scope, receive, send_allow)
