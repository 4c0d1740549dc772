"""A registered callback (jsondagapi reference): a named HTTP endpoint of an outside service
that workflow nodes reference by ``callback_id`` instead of an ``agent_type``.

Each callback id is a stream of its own whose id is derived from the tenant and the callback
id, so registering the same id twice concurrently collides in the store. A service registers
several callbacks at once under one ``service_name`` and ``environment``; they share the
signing secret issued with that registration. The secret itself is never recorded: the event
holds only ``secret_id``, from which the holder of the server's key derives it (see
``domain.webhook_secrets`` and docs/decisions/0007-signed-callback-deliveries.md).

An id that is active under another service or environment is refused (409); the same service
registering it again replaces its URL and secret. A deregistered id may be registered anew.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict
from domain.events import DomainEvent, event_kind

CallbackId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
ServiceName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Environment = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
CallbackStatus = Literal["ACTIVE", "DEREGISTERED"]
_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/callback")


def callback_stream_id(tenant_id: str, callback_id: str) -> UUID:
    """The stream of a tenant's callback id: derived, so anyone can find it without a lookup."""
    return uuid5(_NAMESPACE, f"{tenant_id}\x00{callback_id}")


@event_kind("callback.registered", 0xA101)
class CallbackRegistered(DomainEvent, frozen=True, kw_only=True):
    callback_id: str
    service_name: str
    environment: str
    url: str  # base_url + path, resolved once at registration
    secret_id: str  # derives the signing secret; not the secret (see domain.webhook_secrets)


@event_kind("callback.deregistered", 0xA102)
class CallbackDeregistered(DomainEvent, frozen=True, kw_only=True):
    callback_id: str


@aggregate_root("callback")
class Callback(Aggregate):
    callback_id: str
    service_name: str
    environment: str
    url: str
    secret_id: str
    status: CallbackStatus

    @classmethod
    def register(
        cls, ctx: CommandContext, *, callback_id: str, service_name: str, environment: str, url: str, secret_id: str
    ) -> Callback:
        return cls._create(
            CallbackRegistered,
            ctx,
            aggregate_id=callback_stream_id(ctx.tenant_id, callback_id),
            callback_id=callback_id,
            service_name=service_name,
            environment=environment,
            url=url,
            secret_id=secret_id,
        )

    def register_again(
        self, ctx: CommandContext, *, service_name: str, environment: str, url: str, secret_id: str
    ) -> None:
        """The owner re-registers (new URL and secret), or anyone takes a deregistered id."""
        if self.status == "ACTIVE" and (self.service_name, self.environment) != (service_name, environment):
            raise Conflict(
                f"callback '{self.callback_id}' is registered by {self.service_name} ({self.environment});"
                " deregister it first"
            )
        self._trigger(
            CallbackRegistered,
            ctx,
            callback_id=self.callback_id,
            service_name=service_name,
            environment=environment,
            url=url,
            secret_id=secret_id,
        )

    def deregister(self, ctx: CommandContext) -> None:
        if self.status != "ACTIVE":
            raise Conflict(f"callback '{self.callback_id}' is not registered")
        self._trigger(CallbackDeregistered, ctx, callback_id=self.callback_id)

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, CallbackRegistered):
            self.callback_id = event.callback_id
            self.service_name = event.service_name
            self.environment = event.environment
            self.url = event.url
            self.secret_id = event.secret_id
            self.status = "ACTIVE"
        elif isinstance(event, CallbackDeregistered):
            self.status = "DEREGISTERED"
        else:  # pragma: no cover - a new kind without a branch is a programming error
            raise TypeError(f"Callback cannot apply {type(event).__name__}")
