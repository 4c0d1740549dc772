"""The asynchronous transport: calls with retries, pages, and streams that resume."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar, overload

import httpx
import msgspec

from quipu_client.errors import QuipuConnectionError
from quipu_client.models.page import Page
from quipu_client.sse import ServerEvent, SseParser
from quipu_client.transport.common import (
    Prepared,
    RetryPolicy,
    base_url,
    check,
    decode,
    prepare,
    retry_after,
    should_retry,
)

T = TypeVar("T")


class AsyncTransport:
    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self.http.headers.update(headers)
        self.url = base_url(url)
        self.retry = retry or RetryPolicy()
        self.sleep = asyncio.sleep

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, prepared: Prepared, *, stream: bool = False) -> httpx.Response:
        """Send, retrying as ``RetryPolicy`` and ``should_retry`` allow; the last answer wins."""
        attempt = 0
        while True:
            attempt += 1
            request = self.http.build_request(
                prepared.method,
                self.url + prepared.path,
                params=prepared.params,
                headers=prepared.headers,
                content=prepared.content,
            )
            try:
                response = await self.http.send(request, stream=stream)
            except httpx.TransportError as error:
                if not prepared.repeatable or attempt >= self.retry.attempts:
                    raise QuipuConnectionError(f"{prepared.method} {prepared.path}: {error}") from error
                await self.sleep(self.retry.delay(attempt, None))
                continue
            if attempt >= self.retry.attempts or not should_retry(prepared, response):
                return response
            await response.aclose()
            await self.sleep(self.retry.delay(attempt, retry_after(response)))

    @overload
    async def call(self, method: str, path: str, *, expect: None, **options: Any) -> None: ...
    @overload
    async def call(self, method: str, path: str, *, expect: type[T], **options: Any) -> T: ...
    async def call(self, method: str, path: str, *, expect: Any, **options: Any) -> Any:
        return decode(await self.send(prepare(method, path, **options)), expect)

    async def pages(self, fetch: Callable[[int], Awaitable[Page[T]]]) -> AsyncIterator[T]:
        offset = 0
        while True:
            page = await fetch(offset)
            for item in page.items:
                yield item
            offset += len(page.items)
            if not page.items or offset >= page.total:
                return

    async def sse(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, last_event_id: Any = None
    ) -> AsyncIterator[ServerEvent]:
        """The events, reconnecting with ``Last-Event-ID`` after a drop, until ``completed``."""
        parser = SseParser(str(last_event_id) if last_event_id else None)
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if parser.last_event_id:
                headers["Last-Event-ID"] = parser.last_event_id
            try:
                async with self._open(prepare(method, path, params=params, headers=headers)) as response:
                    async for line in response.aiter_lines():
                        event = parser.feed(line)
                        if event is not None:
                            failures = 0
                            yield event
                            if event.event == "completed":
                                return
            except (httpx.TransportError, QuipuConnectionError):
                pass
            failures += 1  # the stream ended before ``completed``: resume where it stopped
            if failures >= self.retry.attempts:
                raise QuipuConnectionError(f"{path}: the event stream kept dropping")
            await self.sleep(self.retry.delay(failures, None))

    async def ndjson(
        self,
        method: str,
        path: str,
        *,
        item: type[T],
        params: Mapping[str, Any] | None = None,
        last_event_id: Any = None,
    ) -> AsyncIterator[T]:
        """One item per line; after a drop, resumes after the last item's ``event_id``."""
        last = str(last_event_id) if last_event_id else None
        decoder = msgspec.json.Decoder(item)
        failures = 0
        while True:
            headers = {"Last-Event-ID": last} if last else {}
            try:
                async with self._open(prepare(method, path, params=params, headers=headers)) as response:
                    async for line in response.aiter_lines():
                        if line.strip():
                            value = decoder.decode(line)
                            last = str(getattr(value, "event_id", last))
                            failures = 0
                            yield value
                return
            except (httpx.TransportError, QuipuConnectionError) as error:
                failures += 1
                if failures >= self.retry.attempts:
                    raise QuipuConnectionError(f"{path}: the stream kept dropping") from error
                await self.sleep(self.retry.delay(failures, None))

    @contextlib.asynccontextmanager
    async def _open(self, prepared: Prepared) -> AsyncIterator[httpx.Response]:
        response = await self.send(prepared, stream=True)
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            check(response)
        try:
            yield response
        finally:
            await response.aclose()
