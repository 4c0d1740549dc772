"""Connecting to NATS the way Quipu and its workers do: as a given user, reconnecting forever."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.client import RawCredentials


@dataclass(frozen=True)
class NatsEndpoint:
    """Where a NATS client connects and as whom.

    ``credentials`` is the text of a ``.creds`` file (user JWT and nkey seed) or None for a
    server without authentication; ``inbox_prefix`` keeps a client's replies under subjects
    its permissions allow (a worker may only subscribe below its tenant's prefix).
    """

    url: str
    credentials: str | None = field(default=None, repr=False)
    inbox_prefix: str | None = None

    def __str__(self) -> str:
        return self.url

    def with_credentials(self, credentials: str | None, inbox_prefix: str | None = None) -> NatsEndpoint:
        return replace(self, credentials=credentials, inbox_prefix=inbox_prefix)


def endpoint(target: NatsEndpoint | str) -> NatsEndpoint:
    return target if isinstance(target, NatsEndpoint) else NatsEndpoint(target)


async def connect_nats(target: NatsEndpoint | str, **options: Any) -> NATS:
    """A client that keeps reconnecting for as long as the process runs."""
    where = endpoint(target)
    settings: dict[str, Any] = {
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "connect_timeout": 2,
    }
    if where.credentials:
        settings["user_credentials"] = RawCredentials(where.credentials)
    if where.inbox_prefix:
        settings["inbox_prefix"] = where.inbox_prefix
    nc = NATS()
    # A cluster is given as its nodes' URLs, comma-separated: the client then starts from any
    # node that is up, and moves to another one when its node goes away.
    servers = [url.strip() for url in where.url.split(",") if url.strip()]
    await nc.connect(servers, **{**settings, **options})
    return nc
