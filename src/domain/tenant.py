"""The tenant aggregate (CELLSTATE reference): the owner of every other resource.

A tenant was only ever implicit - a subject-safe id on its API keys - and that id stays the
key everything is scoped by. The aggregate adds what a tenant says about itself: a name,
free-form settings, an optional email domain, and a status. Its stream id is derived from
the tenant id, so there is exactly one tenant stream per tenant and anyone can find it
without a lookup; it is started implicitly (the first key issued, the first change), and a
tenant known only from its keys reads as an active tenant named after its id.

Status: ``active`` serves requests; ``suspended`` refuses every key of the tenant (403)
until reactivated; ``archived`` refuses them for good (no transition leaves it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

TenantStatus = Literal["active", "suspended", "archived"]
TenantName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
TenantDomain = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
Settings = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]
_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/tenant")
# Which status may follow which (the same status again is no change, not a transition).
_NEXT: dict[str, frozenset[str]] = {
    "active": frozenset({"suspended", "archived"}),
    "suspended": frozenset({"active", "archived"}),
    "archived": frozenset(),
}


def tenant_stream_id(tenant_id: str) -> UUID:
    """The id of a tenant's stream: derived, so registering twice collides in the store."""
    return uuid5(_NAMESPACE, tenant_id)


@event_kind("tenant.registered", 0xC601)
class TenantRegistered(DomainEvent, frozen=True, kw_only=True):
    name: str
    settings: dict[str, Any] = {}
    domain: str | None = None


@event_kind("tenant.updated", 0xC602)
class TenantUpdated(DomainEvent, frozen=True, kw_only=True):
    """The new name, settings and domain (all of them, so a reader needs no merge)."""

    name: str
    settings: dict[str, Any] = {}
    domain: str | None = None


@event_kind("tenant.status_changed", 0xC603)
class TenantStatusChanged(DomainEvent, frozen=True, kw_only=True):
    status: str
    previous: str


@aggregate_root("tenant")
class Tenant(Aggregate):
    name: str
    settings: dict[str, Any]
    domain: str | None
    status: str

    @classmethod
    def register(cls, ctx: CommandContext, *, name: str | None = None) -> Tenant:
        """Start the stream of ``ctx.tenant_id`` (named after its id unless told)."""
        return cls._create(
            TenantRegistered,
            ctx,
            aggregate_id=tenant_stream_id(ctx.tenant_id),
            name=name or ctx.tenant_id,
        )

    @classmethod
    def implicit(cls, tenant_id: str) -> Tenant:
        """How a tenant known only from its keys reads: active, named after its id. Not
        recorded; a change registers it first."""
        tenant = cls.register(CommandContext(tenant_id, "system"))
        tenant.collect_events()
        tenant.version, tenant.last_event_id = 0, None  # no event of its own yet
        return tenant

    def update(
        self,
        ctx: CommandContext,
        *,
        name: str | None = None,
        settings: dict[str, Any] | None = None,
        domain: str | None = None,
    ) -> None:
        """Change what is given (None: unchanged); nothing is appended when nothing changes."""
        self.require_not_archived("be changed")
        new = {
            "name": self.name if name is None else name,
            "settings": self.settings if settings is None else settings,
            "domain": self.domain if domain is None else domain,
        }
        if all(getattr(self, k) == v for k, v in new.items()):
            return
        self._trigger(TenantUpdated, ctx, **new)

    def change_status(self, ctx: CommandContext, status: str) -> None:
        """Move to ``status``; 409 when the current status cannot go there."""
        if status == self.status:
            raise Conflict(f"tenant {self.tenant_id} is already {status}")
        if status not in _NEXT[self.status]:
            raise Conflict(f"tenant {self.tenant_id} is {self.status}; it cannot become {status}")
        self._trigger(TenantStatusChanged, ctx, status=status, previous=self.status)

    def require_not_archived(self, what: str) -> None:
        if self.status == "archived":
            raise Conflict(f"tenant {self.tenant_id} is archived; it cannot {what}")

    @property
    def serves_requests(self) -> bool:
        return self.status == "active"

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, TenantRegistered):
            self.name = event.name
            self.settings = event.settings
            self.domain = event.domain
            self.status = "active"
        elif isinstance(event, TenantUpdated):
            self.name = event.name
            self.settings = event.settings
            self.domain = event.domain
        elif isinstance(event, TenantStatusChanged):
            self.status = event.status
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Tenant cannot apply {type(event).__name__}")


def may_see(viewer_tenant: str, *, operator: bool, tenant_id: str) -> bool:
    """A key sees its own tenant; only an operator key sees (and changes) the others."""
    return operator or viewer_tenant == tenant_id
