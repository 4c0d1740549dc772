"""Signed callback deliveries (Standard Webhooks, https://www.standardwebhooks.com): what a
service registered with ``POST /callbacks/register`` uses to check that a delivery came from
Quipu and was not replayed.

Every delivery carries three headers: ``webhook-id`` (the same for every retry of one
delivery, so a receiver can drop repeats), ``webhook-timestamp`` (Unix seconds of this
attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"``
under the secret issued at registration (``whsec_`` + base64). The header may list several
space-separated signatures; one match is enough.

Hand-written: this module is not generated from the OpenAPI document.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
#: Deliveries older or newer than this (seconds) are refused, as the standard advises.
DEFAULT_TOLERANCE = 5 * 60


class WebhookVerificationError(Exception):
    """The delivery is not from the holder of the secret, or too old or new to trust."""


def secret_bytes(secret: str | bytes) -> bytes:
    """The key of a ``whsec_...`` secret (the prefix is optional); bytes are taken as they are."""
    if isinstance(secret, bytes):
        return secret
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as error:
        raise WebhookVerificationError("the secret is not base64 after its whsec_ prefix") from error


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """``v1,<signature>`` of one delivery, as the ``webhook-signature`` header carries it."""
    payload = body.encode() if isinstance(body, str) else body
    content = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(secret: str | bytes, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of a signed delivery (the sender's side)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign(secret, msg_id, ts, body)}


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookVerificationError` unless ``body`` was signed with ``secret`` within
    ``tolerance`` seconds of ``now``. Header names are matched case-insensitively; pass the raw
    body, exactly as received (re-encoded JSON would not match)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as error:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from error
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    expected = sign(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no signature matches")
