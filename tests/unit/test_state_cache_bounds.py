"""The state cache's lookups and bounds, on plain aggregates (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from commands import state_cache
from commands.state_cache import StateCache, copy_state
from domain.aggregate import Aggregate


class _Thing(Aggregate):
    items: dict[str, int]


def _thing(stream: UUID, version: int) -> _Thing:
    thing = _Thing.__new__(_Thing)
    thing.id, thing.version, thing.tenant_id = stream, version, "acme"
    thing.correlation_id, thing.last_event_id = stream, None
    thing.created_on = thing.modified_on = datetime.now(UTC)
    thing.items = {"version": version}
    thing._pending = []
    return thing


def test_nearest_is_the_highest_cached_version_at_or_below() -> None:
    cache, stream = StateCache(), uuid4()
    for version in (3, 10, 7):
        cache.put(_thing(stream, version))
    found = [cache.nearest(stream, v) for v in (2, 3, 6, 7, 9, 10, 99, None)]
    assert [f.version if f else None for f in found] == [None, 3, 3, 7, 7, 10, 10, 10]
    assert cache.nearest(uuid4(), None) is None


def test_entries_are_copies_and_bounded_per_stream_and_overall() -> None:
    cache, stream = StateCache(entries=6), uuid4()
    original = _thing(stream, 1)
    cache.put(original)
    original.items["version"] = 99  # the caller's object changes, the cached copy does not
    cached = cache.nearest(stream, 1)
    assert isinstance(cached, _Thing) and cached.items == {"version": 1}
    copy = copy_state(cached)
    copy.items.clear()
    assert cached.items == {"version": 1}
    for version in range(2, 10):
        cache.put(_thing(stream, version))
    kept = [v for v in range(1, 10) if (f := cache.nearest(stream, v)) is not None and f.version == v]
    assert kept == list(range(10 - state_cache.PER_STREAM, 10))  # the newest of one stream
    others = [uuid4() for _ in range(10)]
    for other in others:
        cache.put(_thing(other, 1))
    assert cache.stats()["entries"] == 6  # the least recently used went first
    assert all(cache.nearest(o, None) is not None for o in others[-6:])


def test_long_histories_are_bounded_by_their_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_cache, "VERSION_BUDGET", 100)
    cache = StateCache()
    short = [uuid4() for _ in range(5)]
    for stream in short:
        cache.put(_thing(stream, 2))
    long = uuid4()
    cache.put(_thing(long, 95))  # 10 + 95 > 100: the oldest short ones make room
    assert cache.nearest(long, None) is not None
    assert [cache.nearest(s, None) is not None for s in short] == [False, False, False, True, True]
