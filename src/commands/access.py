"""Application service for API keys and authentication."""

from __future__ import annotations

import threading
import time
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.store import EventStore
from commands.tenants import TenantService
from domain.access import ApiKey, check_tenant_id, ensure_an_admin_remains, hash_key, key_id_for, new_secret
from domain.aggregate import CommandContext

# A revoked key stops working within this many seconds on every API process.
AUTH_CACHE_SECONDS = 5.0


class AccessService:
    def __init__(self, store: EventStore, tenants: TenantService | None = None) -> None:
        self._store = store
        self.tenants = tenants or TenantService(store)  # whose status authentication checks
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()
        self._revoking = threading.Lock()

    def issue(self, ctx: CommandContext, *, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
        """Create a key; the secret is returned once and only its hash is stored. The
        tenant's own stream is started with its first key (tenants are otherwise implicit)."""
        secret = new_secret()
        key = ApiKey.issue(ctx, name=name, scopes=scopes, secret=secret)
        self.tenants.ensure_registered(ctx.tenant_id, ctx.actor)
        self._store.save_all(key)
        return key, secret

    def revoke(self, ctx: CommandContext, key_id: UUID) -> ApiKey:
        # Check-then-save of the last-admin rule is serialized per tenant (the thread lock keeps
        # this process to one waiting connection, the advisory lock covers other API processes),
        # so two admins revoking each other at once cannot both succeed.
        with self._revoking, self._store.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"quipu-api-keys:{ctx.tenant_id}",))
            key = self._store.load(ApiKey, key_id, ctx.tenant_id)
            ensure_an_admin_remains(key, self.list(ctx.tenant_id))
            key.revoke(ctx)
            self._store.save_all(key)
        with self._lock:
            self._cache.clear()
        return key

    def get(self, tenant_id: str, key_id: UUID) -> ApiKey:
        return self._store.load(ApiKey, key_id, tenant_id)

    def list(self, tenant_id: str) -> list[ApiKey]:
        with self._store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT stream_id FROM event_dag WHERE tenant_id = %s AND kind = 'api_key.issued'"
                " ORDER BY notification_id",
                (tenant_id,),
            )
            ids = [row["stream_id"] for row in curs.fetchall()]
        return [self._store.load(ApiKey, i, tenant_id) for i in ids]

    def cached(self, secret: str) -> tuple[bool, ApiKey | None]:
        """(found, key) from this process's short-lived cache; no I/O, so async callers
        can answer most requests without a thread hop."""
        with self._lock:
            hit = self._cache.get(hash_key(secret))
        if hit and time.monotonic() - hit[0] < AUTH_CACHE_SECONDS:
            return True, hit[1]
        return False, None

    def authenticate(self, secret: str) -> ApiKey | None:
        """The live key for a presented secret, or None. Cached briefly per process."""
        found, key = self.cached(secret)
        if found:
            return key
        key_hash = hash_key(secret)
        now = time.monotonic()
        key_id = key_id_for(key_hash)
        try:
            aggregate: object = self._store.repository.get(key_id)
        except AggregateNotFoundError:
            aggregate = None
        key = aggregate if isinstance(aggregate, ApiKey) and not aggregate.revoked else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (now, key)
        return key


def issue_bootstrap_key(store: EventStore, tenant_id: str, scopes: list[str], name: str) -> str:
    """For the CLI: create a key for ``tenant_id`` without an existing credential."""
    check_tenant_id(tenant_id)
    _, secret = AccessService(store).issue(CommandContext(tenant_id, "cli"), name=name, scopes=scopes)
    return secret
