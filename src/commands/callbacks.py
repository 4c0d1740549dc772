"""Application service for the callback registry (jsondagapi reference): register, look up,
deregister, and derive the signing secret of a registration.

The secret is derived from the server key and the registration's ``secret_id`` (see
``domain.webhook_secrets``); it is returned once, by ``register``, and never stored or logged.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.callback import Callback, callback_stream_id
from domain.errors import Conflict, NotFound
from domain.webhook_secrets import derive_secret, new_secret_id, secret_text


@dataclass(frozen=True)
class Registration:
    """What one registration recorded, and the secret shown this once."""

    callbacks: list[Callback]
    secret: str


class CallbackService:
    def __init__(self, store: EventStore, server_key: bytes) -> None:
        self._store = store
        self._server_key = server_key

    def register(
        self, ctx: CommandContext, *, service_name: str, environment: str, base_url: str, paths: Mapping[str, str]
    ) -> Registration:
        """Register every callback of ``paths`` (id -> path under ``base_url``) in one
        transaction, under one new secret. 409 for an id another service holds."""
        secret_id = new_secret_id()
        changed: list[Callback] = []
        for callback_id, path in paths.items():
            url = base_url.rstrip("/") + "/" + path.lstrip("/")
            existing = self._find(ctx.tenant_id, callback_id)
            if existing is None:
                changed.append(
                    Callback.register(
                        ctx,
                        callback_id=callback_id,
                        service_name=service_name,
                        environment=environment,
                        url=url,
                        secret_id=secret_id,
                    )
                )
            else:
                existing.register_again(
                    ctx, service_name=service_name, environment=environment, url=url, secret_id=secret_id
                )
                changed.append(existing)
        self._store.save_all(*changed)
        secret = secret_text(derive_secret(self._server_key, ctx.tenant_id, secret_id))
        return Registration(changed, secret)

    def deregister(self, ctx: CommandContext, callback_id: str, referenced_by: Collection[str]) -> Callback:
        """Deregister; 409 while ``referenced_by`` (live workflows naming it) is not empty."""
        if referenced_by:
            raise Conflict(
                f"callback '{callback_id}' is referenced by live workflows: {', '.join(sorted(referenced_by))}"
            )
        callback = self.get(ctx.tenant_id, callback_id)
        callback.deregister(ctx)
        self._store.save_all(callback)
        return callback

    def get(self, tenant_id: str, callback_id: str) -> Callback:
        """A callback as last registered (also when deregistered); 404 if never registered."""
        found = self._find(tenant_id, callback_id)
        if found is None:
            raise NotFound(f"callback '{callback_id}' is not registered")
        return found

    def active_among(self, tenant_id: str, callback_ids: Collection[str]) -> set[str]:
        """Those of ``callback_ids`` registered and not deregistered (from the log: no lag)."""
        return {cid for cid in callback_ids if (found := self._find(tenant_id, cid)) is not None and found.active}

    def signing_key(self, callback: Callback) -> bytes:
        """The key deliveries to ``callback`` are signed with (never logged)."""
        return derive_secret(self._server_key, callback.tenant_id, callback.secret_id)

    def _find(self, tenant_id: str, callback_id: str) -> Callback | None:
        try:
            return self._store.load(Callback, callback_stream_id(tenant_id, callback_id), tenant_id)
        except NotFound:
            return None
