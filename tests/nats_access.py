"""How tests reach an authenticated NATS: the operator's credentials plus the account's signing key."""

from __future__ import annotations

from dataclasses import dataclass

from bus.nats_auth import NatsAuthority
from bus.runtime import NatsEndpoint


@dataclass(frozen=True)
class NatsForTests(NatsEndpoint):
    """An endpoint with operator credentials (everything allowed), for test code that
    inspects streams, plus what Quipu's wiring needs to give each role a user of its own."""

    authority: NatsAuthority | None = None
    process_env: tuple[tuple[str, str], ...] = ()

    def env(self) -> dict[str, str]:
        """Environment for a ``quipu`` subprocess: the URL, account and signing key file."""
        return dict(self.process_env) or {"QUIPU_NATS_URL": self.url}


def nats_for_tests(server: object) -> NatsForTests:
    """From an ``EmbeddedNats``."""
    base: NatsEndpoint = server.endpoint  # type: ignore[attr-defined]
    return NatsForTests(
        base.url,
        base.credentials,
        authority=server.authority,  # type: ignore[attr-defined]
        process_env=tuple(server.env().items()),  # type: ignore[attr-defined]
    )


def authority_of(nats_url: object) -> NatsAuthority | None:
    return getattr(nats_url, "authority", None)
