"""Application service for tenants: their own stream, started implicitly, and their status.

A tenant's stream is started the first time something is recorded about it (its first API
key, or the first change an admin makes); before that a tenant known from its keys reads
as ``Tenant.implicit``. Whether a tenant serves requests is asked on every authentication,
so the answer is cached for a few seconds per process (as keys are, see
``commands.access``); a change made through this process forgets it at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from commands.errors import ConcurrencyConflict
from commands.store import EventStore
from domain.access import check_tenant_id
from domain.aggregate import CommandContext
from domain.errors import NotFound
from domain.tenant import Tenant, may_see, tenant_stream_id

STATUS_CACHE_SECONDS = 5.0
ATTEMPTS = 16


class TenantService:
    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._status: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def recorded(self, tenant_id: str) -> Tenant | None:
        """The tenant's stream, or None while it is only implicit."""
        try:
            return self._store.load(Tenant, tenant_stream_id(tenant_id), tenant_id)
        except NotFound:
            return None

    def known(self, tenant_id: str) -> bool:
        """Whether the log has anything of this tenant (a key, its own stream)."""
        with self._store.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                "SELECT 1 FROM event_dag WHERE tenant_id = %s AND kind IN ('api_key.issued', 'tenant.registered')"
                " LIMIT 1",
                (tenant_id,),
            )
            return curs.fetchone() is not None

    def get(self, viewer: str, tenant_id: str, *, operator: bool = False) -> Tenant:
        """The tenant as ``viewer``'s key may see it; another tenant (for a non-operator) or
        an unknown one is 404, alike, so the answer never says that it exists."""
        if not may_see(viewer, operator=operator, tenant_id=tenant_id):
            raise NotFound(f"tenant {tenant_id} not found")
        tenant = self.recorded(tenant_id)
        if tenant is not None:
            return tenant
        if tenant_id == viewer or self.known(tenant_id):
            return Tenant.implicit(tenant_id)
        raise NotFound(f"tenant {tenant_id} not found")

    def ensure_registered(self, tenant_id: str, actor: str) -> Tenant:
        """The tenant's stream, started now if it was only implicit (a concurrent start wins)."""
        check_tenant_id(tenant_id)
        for _ in range(ATTEMPTS):
            if (tenant := self.recorded(tenant_id)) is not None:
                return tenant
            tenant = Tenant.register(CommandContext(tenant_id, actor))
            try:
                self._store.save_all(tenant)
            except ConcurrencyConflict:
                continue
            return tenant
        raise AssertionError("unreachable: the tenant's first event either saved or exists")

    def update(
        self,
        ctx: CommandContext,
        tenant_id: str,
        *,
        operator: bool,
        name: str | None = None,
        settings: dict[str, Any] | None = None,
        domain: str | None = None,
        status: str | None = None,
    ) -> Tenant:
        """Change name, settings, domain and status together (409 for an illegal status
        change, 404 for a tenant the caller may not see). The tenant's events name the
        caller's key as actor and are the target tenant's history."""
        self.get(ctx.tenant_id, tenant_id, operator=operator)
        target = CommandContext(tenant_id, ctx.actor, ctx.caused_by)
        for attempt in range(1, ATTEMPTS + 1):
            tenant = self.recorded(tenant_id) or Tenant.register(CommandContext(tenant_id, ctx.actor))
            tenant.update(target, name=name, settings=settings, domain=domain)
            if status is not None:
                tenant.change_status(target, status)
            try:
                self._store.save_all(tenant)  # registering and changing in one transaction
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                continue
            self.forget(tenant_id)
            return tenant
        raise AssertionError("unreachable")

    def status(self, tenant_id: str) -> str:
        """The tenant's status, cached briefly: asked on every authentication."""
        now = time.monotonic()
        with self._lock:
            hit = self._status.get(tenant_id)
        if hit is not None and now - hit[0] < STATUS_CACHE_SECONDS:
            return hit[1]
        tenant = self.recorded(tenant_id)
        status = tenant.status if tenant is not None else "active"
        with self._lock:
            if len(self._status) > 10_000:
                self._status.clear()
            self._status[tenant_id] = (now, status)
        return status

    def cached_status(self, tenant_id: str) -> str | None:
        """The cached status without I/O, or None when it must be looked up."""
        with self._lock:
            hit = self._status.get(tenant_id)
        if hit is not None and time.monotonic() - hit[0] < STATUS_CACHE_SECONDS:
            return hit[1]
        return None

    def forget(self, tenant_id: str) -> None:
        with self._lock:
            self._status.pop(tenant_id, None)
