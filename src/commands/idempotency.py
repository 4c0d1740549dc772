"""Idempotent creates without a side table: the key decides the new aggregate's id.

A create with ``Idempotency-Key: K`` gets the id uuid5(tenant, resource, K). A retry
finds that stream already written (or collides with the concurrent first try on the
(id, version) key) and answers from it, so "created once" is guaranteed by the same
unique constraint that guards every append - nothing can be half-written.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

_NAMESPACE = uuid5(NAMESPACE_URL, "https://quipu.dev/ns/idempotency")
_encoder = msgspec.json.Encoder(order="sorted")


def idempotent_id(tenant_id: str, resource: str, key: str) -> UUID:
    return uuid5(_NAMESPACE, f"{tenant_id}\x00{resource}\x00{key}")


def request_hash(body: Any) -> str:
    """Hash of the request body in canonical form (key order and spacing do not matter)."""
    return hashlib.sha256(_encoder.encode(body)).hexdigest()
