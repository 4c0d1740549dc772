"""A cache of reconstructed aggregate states, keyed by stream and version.

A stream's history never changes (invariant 3, docs/architecture.md), so the state of a
stream *at version v* is a fact: once rebuilt from the store it can be kept and used again
by any reader. ``EventStore.load`` starts from the nearest cached state at or below the
version it wants and applies only the stored events after it (one query; usually none or a
few rows), instead of reading a snapshot and replaying up to a hundred events. A load of the
latest state still asks the store for every event after the cached one, so it is never
stale: the cache only saves work, it never answers for the head of a stream by itself.

Only states rebuilt from stored events enter the cache (a load's result), never the object
a command mutated before saving, so a cached state is exactly what a reader replaying the
log would build (a property test compares them). Entries are templates: ``take`` hands out
a copy whose containers are fresh, because callers run commands on what they load.
Aggregates opt in with ``STATE_CACHE = True``: their ``apply`` must replace, not mutate in
place, the values inside their containers (dict, set and list fields are copied one level
deep, their values shared).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, TypeVar
from uuid import UUID

from domain.aggregate import Aggregate

_A = TypeVar("_A", bound=Aggregate)
DEFAULT_ENTRIES = 1024  # a few versions of each of some hundreds of runs in flight
PER_STREAM = 4  # versions kept per stream: the head plus a few points of its past
# A state's size grows with its history, so entries are also bounded by the sum of their
# versions: a few long streams cannot fill the memory that thousands of short ones need.
VERSION_BUDGET = 1_000_000


def cacheable(cls: type[Aggregate]) -> bool:
    return bool(getattr(cls, "STATE_CACHE", False))


def copy_state(aggregate: _A) -> _A:
    """A copy sharing only immutable values: every dict, set and list field is copied."""
    cls = type(aggregate)
    fresh = cls.__new__(cls)
    target = fresh.__dict__
    for name, value in vars(aggregate).items():
        kind = type(value)
        target[name] = kind(value) if kind is dict or kind is set or kind is list else value
    target["_pending"] = []
    return fresh


class StateCache:
    """Thread-safe LRU of (stream id, version) -> aggregate template."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._entries = entries
        self._lru: OrderedDict[tuple[UUID, int], Aggregate] = OrderedDict()
        self._versions: dict[UUID, list[int]] = {}  # per stream, sorted
        self._weight = 0  # the sum of the cached versions
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def nearest(self, stream_id: UUID, version: int | None) -> Aggregate | None:
        """The cached state with the highest version at or below ``version`` (any, if None).
        The caller must not mutate it: ``copy_state`` first."""
        with self._lock:
            versions = self._versions.get(stream_id)
            found = None
            if versions:
                below = versions if version is None else [v for v in versions if v <= version]
                if below:
                    found = self._lru[(stream_id, below[-1])]
                    self._lru.move_to_end((stream_id, below[-1]))
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def put(self, aggregate: Aggregate) -> None:
        """Keep a copy of ``aggregate`` (a state rebuilt from stored events)."""
        if not aggregate.version:
            return
        key = (aggregate.id, aggregate.version)
        with self._lock:
            if key in self._lru:
                self._lru.move_to_end(key)
                return
        template = copy_state(aggregate)  # outside the lock: large states take a while
        with self._lock:
            if key in self._lru:
                return
            self._lru[key] = template
            self._weight += aggregate.version
            versions = self._versions.setdefault(aggregate.id, [])
            versions.append(aggregate.version)
            versions.sort()
            if len(versions) > PER_STREAM:
                # Keep the newest (the head, where commands work) and the most recently added.
                drop = versions[0] if versions[0] != aggregate.version else versions[1]
                self._forget((aggregate.id, drop))
            while len(self._lru) > self._entries or (self._weight > VERSION_BUDGET and len(self._lru) > 1):
                self._forget(next(iter(self._lru)))

    def _forget(self, key: tuple[UUID, int]) -> None:
        if self._lru.pop(key, None) is not None:
            self._weight -= key[1]
        versions = self._versions.get(key[0])
        if versions is not None:
            versions.remove(key[1])
            if not versions:
                del self._versions[key[0]]

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()
            self._versions.clear()
            self._weight = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"entries": len(self._lru), "hits": self.hits, "misses": self.misses}
