"""What every resource group holds: the transport its calls go through."""

from __future__ import annotations

from quipu_client.transport.aio import AsyncTransport
from quipu_client.transport.common import new_idempotency_key
from quipu_client.transport.sync import SyncTransport

__all__ = ["AsyncResource", "SyncResource", "new_idempotency_key"]


class SyncResource:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport


class AsyncResource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport
