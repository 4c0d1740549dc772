"""The clients: every resource group of Quipu's API behind one object.

    from quipu_client import QuipuClient

    with QuipuClient("http://127.0.0.1:8000", api_key="qk_...") as quipu:
        workflow = quipu.workflows.create({"name": "digest", "definition": {"nodes": [{"id": "fetch"}]}})

The URL and key default to ``QUIPU_URL`` and ``QUIPU_API_KEY``. ``AsyncQuipuClient`` has the
same groups and methods, to be awaited.
"""

from __future__ import annotations

import os
from types import TracebackType

import httpx

from quipu_client.resources.aio_groups import AsyncResources
from quipu_client.resources.sync_groups import Resources
from quipu_client.transport.aio import AsyncTransport
from quipu_client.transport.common import RetryPolicy
from quipu_client.transport.sync import SyncTransport


def _settings(url: str | None, api_key: str | None) -> tuple[str, str | None]:
    url = url or os.environ.get("QUIPU_URL")
    if not url:
        raise ValueError("give Quipu's URL (or set QUIPU_URL)")
    return url, api_key or os.environ.get("QUIPU_API_KEY")


class QuipuClient(Resources):
    """Synchronous client. ``retry`` says how often 429/503 and dropped connections are retried;
    ``http`` lends an ``httpx.Client`` of your own (proxies, certificates, transports)."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        url, api_key = _settings(url, api_key)
        self.transport = SyncTransport(url, api_key, timeout=timeout, retry=retry, http=http)
        super().__init__(self.transport)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> QuipuClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class AsyncQuipuClient(AsyncResources):
    """Asynchronous client: the same groups and methods as ``QuipuClient``, to be awaited
    (streams and ``iter_*`` methods are async iterators)."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        url, api_key = _settings(url, api_key)
        self.transport = AsyncTransport(url, api_key, timeout=timeout, retry=retry, http=http)
        super().__init__(self.transport)

    async def close(self) -> None:
        await self.transport.close()

    async def __aenter__(self) -> AsyncQuipuClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()
