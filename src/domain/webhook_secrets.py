"""Callback signing secrets, derived rather than stored.

A registration records only a random ``secret_id``. The secret is
``HMAC-SHA256(server key, "quipu/callback-secret/v1" | tenant | secret_id)``: whoever holds the
server's key (the API, to show the secret once; the deliverer, to sign) derives it again, and
nothing in the log or the read models is enough to sign. The server key comes from
``QUIPU_SECRET_KEY`` or a file in the data directory (see
docs/decisions/0007-signed-callback-deliveries.md for why derivation and not encryption).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
_LABEL = b"quipu/callback-secret/v1"
MIN_SERVER_KEY_BYTES = 32


def new_secret_id() -> str:
    """A fresh, unguessable id for one registration's secret."""
    return secrets.token_urlsafe(24)


def derive_secret(server_key: bytes, tenant_id: str, secret_id: str) -> bytes:
    """The 32-byte signing key of one registration (a tenant's id is bound in, so a secret id
    copied into another tenant's registration yields another key)."""
    if len(server_key) < MIN_SERVER_KEY_BYTES:
        raise ValueError(f"the server key must have at least {MIN_SERVER_KEY_BYTES} bytes")
    message = b"\x00".join((_LABEL, tenant_id.encode(), secret_id.encode()))
    return hmac.new(server_key, message, hashlib.sha256).digest()


def secret_text(key: bytes) -> str:
    """The secret as the registering service is shown it: ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(key).decode()
