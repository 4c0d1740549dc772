"""Canonical encoding and the hash chain of the event DAG."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from domain.events import DomainEvent
from domain.upcasting import STORED_VERSION_KEY

_encoder = msgspec.json.Encoder(order="sorted")
HASH_DOMAIN = b"quipu-event-v1"


def canonical_encoding(event: DomainEvent) -> bytes:
    """The event as JSON with sorted keys: the bytes stored and the bytes hashed.

    A kind past schema version 1 also records its version, so a reader knows which
    upcasters the payload still needs; version-1 events keep the bytes they always had.
    """
    if event.SCHEMA_VERSION == 1:
        return _encoder.encode(event)
    fields: dict[str, object] = msgspec.to_builtins(event)
    fields[STORED_VERSION_KEY] = event.SCHEMA_VERSION
    return _encoder.encode(fields)


def event_hash(state: bytes, depth: int, parent_hashes: Sequence[str]) -> str:
    """SHA-256 over the canonical event bytes, its depth and its parents' hashes in order.

    Because each hash covers the parents' hashes, changing any ancestor changes every
    descendant's hash: ``verify`` only has to recompute along the ancestry.
    """
    digest = hashlib.sha256()
    digest.update(HASH_DOMAIN)
    digest.update(b"\n")
    digest.update(state)
    digest.update(b"\n%d" % depth)
    for parent_hash in parent_hashes:
        digest.update(b"\n")
        digest.update(parent_hash.encode("ascii"))
    return digest.hexdigest()


def depth_from(parent_depths: Sequence[int]) -> int:
    """0 for a root, else one more than the deepest parent."""
    return 1 + max(parent_depths) if parent_depths else 0


def state_hash(state: object) -> str:
    """SHA-256 of a JSON state in canonical form (what an approver was shown)."""
    return hashlib.sha256(_encoder.encode(state)).hexdigest()
