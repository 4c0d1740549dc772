"""Event schema versions and upcasters: old payloads read in the current shape.

Every event kind has a schema version, its class's ``SCHEMA_VERSION`` (1 unless the class
says otherwise). An event of a kind at version 2 or more is stored with that number under
``schema_version`` in its canonical bytes (``domain.hashing.canonical_encoding``); an
event without the key was written at version 1. The stored bytes, and so the hash, are
never rewritten: when an event is read, the upcasters registered for its kind turn its
payload, one version step at a time, into the shape of the current class
(docs/decisions/0008-event-schema-versions.md).

An upcaster sees and returns the kind's own fields only (never the header: ids, stream,
version, tenant, parents, actor and time are not the payload's to change), and is a pure
function of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from domain.events import HEADER_FIELDS, all_kinds, event_class

STORED_VERSION_KEY = "schema_version"
"""The key of the stored canonical JSON that records a kind's schema version (absent = 1)."""

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UpcastError(Exception):
    """A stored event that this code cannot bring to its kind's current shape: an upcaster
    is missing, or the event was written by a newer version of the code."""


def upcaster(kind: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator: ``fn`` turns a payload of ``kind`` at ``from_version`` into ``from_version + 1``."""
    if from_version < 1:
        raise ValueError(f"schema versions start at 1, not {from_version}")

    def register(fn: Upcaster) -> Upcaster:
        if (kind, from_version) in _UPCASTERS:
            raise ValueError(f"duplicate upcaster: {kind} from version {from_version}")
        _UPCASTERS[(kind, from_version)] = fn
        return fn

    return register


def current_version(kind: str) -> int:
    """The schema version the code writes and reads ``kind`` in."""
    return event_class(kind).SCHEMA_VERSION


def stored_version(raw: Mapping[str, Any]) -> int:
    """The schema version a decoded stored event was written at."""
    version = raw.get(STORED_VERSION_KEY, 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise UpcastError(f"stored schema version is not a positive integer: {version!r}")
    return version


def upcast_payload(kind: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` written at ``version``, upcast step by step to the kind's current version."""
    current = current_version(kind)
    if version > current:
        raise UpcastError(
            f"{kind} was stored at schema version {version}, but this code knows version {current}: upgrade it"
        )
    for step in range(version, current):
        fn = _UPCASTERS.get((kind, step))
        if fn is None:
            raise UpcastError(f"no upcaster for {kind} from schema version {step}")
        payload = fn(dict(payload))
        if HEADER_FIELDS & payload.keys() or STORED_VERSION_KEY in payload:
            raise UpcastError(f"the upcaster of {kind} from version {step} returned a header field")
    return payload


def upcast_state(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A decoded stored event (header and payload, as stored) in the current shape of its
    kind, without the version key: what the current class decodes."""
    version = stored_version(raw)
    header = {k: v for k, v in raw.items() if k in HEADER_FIELDS}
    payload = {k: v for k, v in raw.items() if k not in HEADER_FIELDS and k != STORED_VERSION_KEY}
    if version == current_version(kind):
        return {**payload, **header}
    return {**upcast_payload(kind, version, payload), **header}


_KEY_BYTES = b'"' + STORED_VERSION_KEY.encode() + b'":'


def needs_upcasting(kind: str, state: bytes) -> bool:
    """False when the stored bytes are certainly in the kind's current shape: the kind is
    still at version 1 and the event records no version (one written by newer code does,
    and must be refused rather than misread). A payload text that merely contains the key
    only costs the slow path, which reads the real top-level key."""
    return event_class(kind).SCHEMA_VERSION > 1 or _KEY_BYTES in state


def decode_state(kind: str, state: bytes) -> dict[str, Any]:
    """Stored canonical bytes as a dict in the kind's current shape (header included)."""
    raw: dict[str, Any] = msgspec.json.decode(state)
    return upcast_state(kind, raw) if needs_upcasting(kind, state) else raw


def missing_upcasters() -> list[str]:
    """Gaps in the registry: a kind at version N needs upcasters from 1 to N - 1, and every
    upcaster must belong to a known kind below its current version. Empty when complete."""
    problems = []
    kinds = all_kinds()
    for kind in kinds:
        for step in range(1, current_version(kind)):
            if (kind, step) not in _UPCASTERS:
                problems.append(f"{kind}: no upcaster from version {step}")
    for kind, step in sorted(_UPCASTERS):
        if kind not in kinds:
            problems.append(f"{kind}: upcaster for an unknown kind")
        elif step >= current_version(kind):
            problems.append(f"{kind}: upcaster from version {step}, but the kind is at {current_version(kind)}")
    return problems
