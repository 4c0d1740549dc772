"""The client's live event stream against a real Quipu: resuming with Last-Event-ID, both
when asked to and after the connection drops in the middle of the stream."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx

from quipu_client import AsyncQuipuClient, ServerEvent
from tests.client.conftest import Served
from tests.client.support import Recorder, finished_run

BLANK_LINE = re.compile(rb"\r?\n\r?\n")  # the end of an SSE event


class _DropAfter(httpx.AsyncByteStream):
    """Passes a response body through, then fails like a reset connection after ``events``
    complete SSE events (blocks that carry data), mid-stream."""

    def __init__(self, inner: httpx.AsyncByteStream, events: int) -> None:
        self.inner, self.events = inner, events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        buffer, sent, complete = b"", 0, 0
        async for chunk in self.inner:
            buffer += chunk
            while (blank := BLANK_LINE.search(buffer, sent)) is not None:
                complete += b"data:" in buffer[sent : blank.end()]
                yield buffer[sent : blank.end()]
                sent = blank.end()
                if complete == self.events:
                    raise httpx.ReadError("connection reset by peer")
        yield buffer[sent:]

    async def aclose(self) -> None:
        await self.inner.aclose()


class DroppingOnce(httpx.AsyncBaseTransport):
    """A real HTTP transport whose first event stream breaks after two events."""

    def __init__(self) -> None:
        self.http = httpx.AsyncHTTPTransport()
        self.dropped = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.http.handle_async_request(request)
        if self.dropped or not request.url.path.endswith("/events"):
            return response
        self.dropped = True
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers, stream=_DropAfter(response.stream, 2))

    async def aclose(self) -> None:
        await self.http.aclose()


async def _all(events: AsyncIterator[ServerEvent]) -> list[ServerEvent]:
    return [event async for event in events]


async def test_the_event_stream_resumes_after_a_given_event(served: Served) -> None:
    async with served.client() as quipu:
        run = await finished_run(quipu)
        everything = await _all(quipu.executions.events(run.id, from_start=True))
        assert everything[-1].event == "completed" and everything[-1].data["status"].lower() == "succeeded"
        assert all(e.id for e in everything) and len({e.id for e in everything}) == len(everything)

        rest = await _all(quipu.executions.events(run.id, last_event_id=everything[1].id))
        assert [(e.id, e.event) for e in rest] == [(e.id, e.event) for e in everything[2:]]


async def test_a_dropped_stream_resumes_by_itself_without_gaps_or_repeats(served: Served) -> None:
    async with served.client() as quipu:
        run = await finished_run(quipu)
        expected = await _all(quipu.executions.events(run.id, from_start=True))

    recorder = Recorder()
    transport = DroppingOnce()
    http = httpx.AsyncClient(transport=transport, event_hooks={"request": [recorder.on_request]})
    async with AsyncQuipuClient(served.url, served.quipu.keys["acme"], http=http) as quipu:
        got = await _all(quipu.executions.events(run.id, from_start=True))
    assert transport.dropped
    assert [(e.id, e.event) for e in got] == [(e.id, e.event) for e in expected]
    streams = [r for r in recorder.requests if r.url.path.endswith("/events")]
    assert len(streams) == 2
    assert "last-event-id" not in streams[0].headers
    assert streams[1].headers["last-event-id"] == expected[1].id
