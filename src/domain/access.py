"""Tenants and API keys. Keys are stored as SHA-256 hashes only; the secret is shown once."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.aggregate import Aggregate, CommandContext, aggregate_root
from domain.errors import Conflict, FieldProblem, ValidationFailed
from domain.events import DomainEvent, event_kind

Scope = Literal["read", "write", "admin", "worker", "operator"]
# read < write < admin < operator: each implies the ones before it. "worker" stands apart: it
# may take tasks and report on them (what a worker process needs) and read nothing; write
# implies it. "operator" is admin over every tenant (list, suspend, reactivate them); only
# the CLI or another operator key issues one (docs/architecture.md, Tenants).
SCOPES: tuple[Scope, ...] = ("read", "write", "admin", "worker", "operator")
_RANKED: tuple[Scope, ...] = ("read", "write", "admin", "operator")
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # safe as a NATS subject token
_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/api-key")
KEY_PREFIX = "qk_"


def check_tenant_id(tenant_id: str) -> None:
    if not TENANT_PATTERN.match(tenant_id):
        raise ValidationFailed(
            [
                FieldProblem(
                    "tenant",
                    "tenant ids are 1-63 chars of a-z, 0-9, '_' or '-', starting alphanumeric",
                    "invalid_tenant",
                )
            ]
        )


def hash_key(secret: str) -> str:
    """Keys are 256-bit random tokens, so a fast hash cannot be brute-forced."""
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_for(key_hash: str) -> UUID:
    """The aggregate id of a key: derived from its hash, so auth is one direct lookup."""
    return uuid5(_NAMESPACE, key_hash)


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@event_kind("api_key.issued", 0xD001)
class ApiKeyIssued(DomainEvent, frozen=True, kw_only=True):
    name: str
    scopes: list[str]
    key_hash: str
    key_prefix: str


@event_kind("api_key.revoked", 0xD002)
class ApiKeyRevoked(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


@aggregate_root("api_key")
class ApiKey(Aggregate):
    """A bearer credential of one tenant, with scopes."""

    name: str
    scopes: list[str]
    key_hash: str
    key_prefix: str
    revoked: bool

    @classmethod
    def issue(cls, ctx: CommandContext, *, name: str, scopes: list[str], secret: str) -> ApiKey:
        check_tenant_id(ctx.tenant_id)
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ValidationFailed(
                [FieldProblem("scopes", f"scopes must be a non-empty subset of {list(SCOPES)}", "invalid_scope")]
            )
        key_hash = hash_key(secret)
        return cls._create(
            ApiKeyIssued,
            ctx,
            aggregate_id=key_id_for(key_hash),
            name=name,
            scopes=sorted(set(scopes), key=SCOPES.index),
            key_hash=key_hash,
            key_prefix=secret[: len(KEY_PREFIX) + 6],
        )

    def revoke(self, ctx: CommandContext, *, reason: str | None = None) -> None:
        if self.revoked:
            raise Conflict(f"api key {self.id} is already revoked")
        self._trigger(ApiKeyRevoked, ctx, reason=reason)

    def allows(self, scope: Scope) -> bool:
        if self.revoked:
            return False
        if scope == "worker":
            return any(s in ("worker", "write", "admin", "operator") for s in self.scopes)
        ranked = [_RANKED.index(s) for s in self.scopes if s in _RANKED]
        return any(rank >= _RANKED.index(scope) for rank in ranked)

    def apply(self, event: DomainEvent) -> None:
        if isinstance(event, ApiKeyIssued):
            self.name = event.name
            self.scopes = event.scopes
            self.key_hash = event.key_hash
            self.key_prefix = event.key_prefix
            self.revoked = False
        elif isinstance(event, ApiKeyRevoked):
            self.revoked = True
        else:  # pragma: no cover
            raise TypeError(f"ApiKey cannot apply {type(event).__name__}")


def ensure_an_admin_remains(revoking: ApiKey, tenant_keys: Iterable[ApiKey]) -> None:
    """Revoking a key must leave its tenant an active admin key: without one nobody can issue
    or revoke keys any more and the tenant is stranded (an admin key revoking itself included)."""
    if revoking.allows("admin") and not any(k.id != revoking.id and k.allows("admin") for k in tenant_keys):
        raise Conflict(
            f"api key {revoking.id} is the tenant's last active admin key; issue another admin key before revoking it"
        )
