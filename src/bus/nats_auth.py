"""NATS decentralized (JWT) authentication: keys, signed claims and credentials.

NATS in operator mode trusts an operator key; the operator signs accounts, and an account
(or a signing key of the account) signs users. A user JWT carries its own publish and
subscribe permissions, so Quipu can mint a credential for one worker of one tenant at any
time without touching the server's configuration. The server learns the operator and the
account from its config (a memory resolver preloaded with the account JWT).

In the embedded default Quipu generates all the keys under its data folder (mode 0600). In
production the operator's own tooling (``nsc``) owns the operator and account; Quipu is
given a signing key of the account (``QUIPU_NATS_ACCOUNT`` and ``QUIPU_NATS_SIGNING_KEY_FILE``)
to mint role and worker credentials, or ready-made credentials (``QUIPU_NATS_CREDS``).

JWT layout follows the NATS v2 claims (github.com/nats-io/jwt): header
``{"typ":"JWT","alg":"ed25519-nkey"}``, claims with ``jti``, ``iat``, ``iss``, ``sub``,
``name`` and a ``nats`` object, signed with Ed25519 by the issuer's nkey.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nkeys

_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_UNLIMITED_LIMITS = {"subs": -1, "data": -1, "payload": -1}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def new_seed(prefix: int) -> str:
    """A fresh nkey seed of the given role (operator, account or user)."""
    return str(nkeys.encode_seed(os.urandom(32), prefix).decode())


def public_key(seed: str) -> str:
    return str(nkeys.from_seed(seed.encode()).public_key.decode())


def encode_jwt(issuer_seed: str, subject: str, name: str, nats: dict[str, Any], *, expires: int | None = None) -> str:
    """Sign ``nats`` claims about ``subject`` with ``issuer_seed``; returns the compact JWT."""
    issuer = nkeys.from_seed(issuer_seed.encode())
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "name": name,
        "sub": subject,
        "nats": {**nats, "version": 2},
    }
    if expires is not None:
        claims["exp"] = expires
    # The claim id is the base32 SHA-512/256 of the claims without it, as nats-io/jwt does.
    claims["jti"] = base64.b32encode(hashlib.new("sha512_256", _json(claims)).digest()).decode().rstrip("=")
    signing_input = f"{_b64(_json(_HEADER))}.{_b64(_json(claims))}"
    signature = issuer.sign(signing_input.encode())
    return f"{signing_input}.{_b64(signature)}"


def creds_text(user_jwt: str, user_seed: str) -> str:
    """The standard ``.creds`` file layout that NATS clients (and ``nats --creds``) read."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed}\n"
        "------END USER NKEY SEED------\n"
    )


@dataclass(frozen=True)
class Permissions:
    """What one NATS user may publish and subscribe to (allow lists; all else is denied)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool = False  # may reply to requests it received, whatever the reply subject

    def claims(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pub": {"allow": list(self.publish)} if self.publish else {},
            "sub": {"allow": list(self.subscribe)} if self.subscribe else {},
            **_UNLIMITED_LIMITS,
            "type": "user",
        }
        if self.allow_responses:
            out["resp"] = {"max": 1, "ttl": 0}
        return out


EVERYTHING = Permissions(publish=(">",), subscribe=(">",))


@dataclass(frozen=True)
class NatsAuthority:
    """An account's signing key: mints user credentials for Quipu's roles and its workers."""

    account: str  # the account's public key (the issuer_account of every minted user)
    signing_seed: str = field(repr=False)

    def mint(self, name: str, permissions: Permissions, *, ttl_seconds: int | None = None) -> str:
        """Credentials (``.creds`` text) for a new user with exactly ``permissions``."""
        user_seed = new_seed(nkeys.PREFIX_BYTE_USER)
        nats = permissions.claims()
        if public_key(self.signing_seed) != self.account:
            nats["issuer_account"] = self.account
        expires = int(time.time()) + ttl_seconds if ttl_seconds else None
        token = encode_jwt(self.signing_seed, public_key(user_seed), name, nats, expires=expires)
        return creds_text(token, user_seed)

    @classmethod
    def from_files(cls, account: str, signing_key_file: Path) -> NatsAuthority:
        return cls(account, signing_key_file.read_text().strip())


@dataclass(frozen=True)
class OperatorKeys:
    """Everything an embedded NATS in operator mode needs; generated once, kept 0600."""

    operator_seed: str = field(repr=False)
    system_seed: str = field(repr=False)
    account_seed: str = field(repr=False)
    signing_seed: str = field(repr=False)

    @classmethod
    def generate(cls) -> OperatorKeys:
        return cls(
            new_seed(nkeys.PREFIX_BYTE_OPERATOR),
            new_seed(nkeys.PREFIX_BYTE_ACCOUNT),
            new_seed(nkeys.PREFIX_BYTE_ACCOUNT),
            new_seed(nkeys.PREFIX_BYTE_ACCOUNT),
        )

    @property
    def authority(self) -> NatsAuthority:
        return NatsAuthority(public_key(self.account_seed), self.signing_seed)

    def server_config(self, account_name: str = "QUIPU") -> str:
        """The operator, system account and Quipu's account (JetStream enabled) for nats.conf."""
        operator_pub = public_key(self.operator_seed)
        system_pub = public_key(self.system_seed)
        account_pub = public_key(self.account_seed)
        operator_jwt = encode_jwt(
            self.operator_seed, operator_pub, "quipu-operator", {"type": "operator", "system_account": system_pub}
        )
        system_jwt = encode_jwt(self.operator_seed, system_pub, "SYS", _account_claims(jetstream=False))
        account_jwt = encode_jwt(
            self.operator_seed,
            account_pub,
            account_name,
            {**_account_claims(jetstream=True), "signing_keys": [public_key(self.signing_seed)]},
        )
        return (
            f'operator: "{operator_jwt}"\n'
            f'system_account: "{system_pub}"\n'
            "resolver: MEMORY\n"
            "resolver_preload: {\n"
            f'  {system_pub}: "{system_jwt}"\n'
            f'  {account_pub}: "{account_jwt}"\n'
            "}\n"
        )


def _account_claims(*, jetstream: bool) -> dict[str, Any]:
    storage = -1 if jetstream else 0  # non-zero storage limits are what enable JetStream
    return {
        "type": "account",
        "limits": {
            "subs": -1,
            "data": -1,
            "payload": -1,
            "imports": -1,
            "exports": -1,
            "wildcards": True,
            "conn": -1,
            "leaf": -1,
            "mem_storage": storage,
            "disk_storage": storage,
            "streams": -1 if jetstream else 0,
            "consumer": -1 if jetstream else 0,
        },
        "default_permissions": {"pub": {}, "sub": {}},
    }
