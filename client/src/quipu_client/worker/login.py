"""The worker side of worker credentials: log in to Quipu with an API key, connect to NATS
as the user Quipu minted, and renew before the credentials expire.

Credentials are read at every (re)connect through callbacks. NATS closes a connection whose
JWT expired, and nats-py does not reconnect after that error, so a renewal is followed by a
forced reconnect: the connection always runs on credentials that have not expired.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import nkeys
from nats.aio.client import Client as NATS

from quipu_client.models.workers import WorkerCredentials
from quipu_client.nats_connect import NatsEndpoint, connect_nats

log = logging.getLogger(__name__)
CREDENTIALS_PATH = "/api/v1/workers/credentials"
RENEW_AT = 0.5  # of the credentials' lifetime
MAX_LOGIN_DELAY = 5.0  # seconds between login attempts while Quipu is unreachable


class LoginRefused(RuntimeError):
    """Quipu refused the API key (401/403) or the request (4xx): retrying will not help."""


def _section(creds: str, begin: str) -> str:
    lines = creds.splitlines()
    for i, line in enumerate(lines):
        if begin in line:
            return lines[i + 1].strip()
    raise ValueError(f"credentials without {begin}")


class WorkerLogin:
    def __init__(self, quipu_url: str, api_key: str, agent_types: list[str], name: str) -> None:
        base = quipu_url.rstrip("/")
        self._url = (base.removesuffix("/api/v1")) + CREDENTIALS_PATH
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._body = {"agent_types": agent_types, "name": name}
        self.grant: WorkerCredentials | None = None
        self._nc: NATS | None = None

    async def login(self) -> WorkerCredentials:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(self._url, json=self._body, headers=self._headers)
        if 400 <= response.status_code < 500:
            raise LoginRefused(f"{response.status_code}: {response.text[:500]}")
        response.raise_for_status()
        self.grant = msgspec.json.decode(response.content, type=WorkerCredentials)
        return self.grant

    async def login_when_reachable(self, stop: asyncio.Event) -> WorkerCredentials | None:
        """Log in, waiting while Quipu cannot be reached or answers 5xx: a worker may start
        before Quipu, or while it restarts. A refused key raises at once; None if stopped first."""
        delay = 0.2
        while not stop.is_set():
            try:
                return await self.login()
            except LoginRefused:
                raise
            except (httpx.HTTPError, OSError) as error:
                log.warning("worker_login_retrying error=%s", str(error) or type(error).__name__)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, MAX_LOGIN_DELAY)
        return None

    async def connect(self, **options: Any) -> NATS:
        grant = self.grant or await self.login()
        where = NatsEndpoint(grant.nats_url, inbox_prefix=grant.inbox_prefix)
        if grant.credentials is None:  # a bus without authentication
            return await connect_nats(where, **options)
        self._nc = await connect_nats(where, user_jwt_cb=self._jwt, signature_cb=self._sign, **options)
        return self._nc

    def _creds(self) -> str:
        assert self.grant is not None and self.grant.credentials is not None
        return self.grant.credentials

    def _jwt(self) -> bytearray:
        return bytearray(_section(self._creds(), "BEGIN NATS USER JWT").encode())

    def _sign(self, nonce: str) -> bytes:
        key = nkeys.from_seed(bytearray(_section(self._creds(), "BEGIN USER NKEY SEED").encode()))
        try:
            return base64.b64encode(key.sign(nonce.encode()))
        finally:
            key.wipe()

    async def keep_renewed(self, stop: asyncio.Event) -> None:
        """Renew at half the lifetime; while Quipu is unreachable, retry until it answers."""
        while not stop.is_set() and self.grant is not None and self.grant.expires_at is not None:
            left = (self.grant.expires_at - datetime.now(UTC)).total_seconds()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), max(1.0, left * RENEW_AT))
            if stop.is_set():
                return
            try:
                await self.login()
                log.info("worker_credentials_renewed expires_at=%s", self.grant.expires_at)
                if self._nc is not None:
                    await self._nc.force_reconnect()  # subscriptions are restored on the new connection
            except LoginRefused:
                raise
            except (httpx.HTTPError, OSError) as error:
                log.warning("worker_credentials_renewal_failed error=%s", str(error) or type(error).__name__)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
