"""Group commit: concurrent commands share one append transaction.

eventsourcing's recorder takes ``LOCK TABLE ... IN EXCLUSIVE MODE`` for every append so
notification ids commit in order; appends are therefore serial, and each pays a full
commit. A single committer thread drains whatever requests are waiting and appends them
together: one lock, one commit, gapless order kept. Each request still succeeds or fails
as a whole - if a group fails on a conflict or a bad causal link, its requests are
retried one by one so the error lands only on the request that caused it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent

MAX_GROUP_EVENTS = 1000
LINGER_SECONDS = 0.0003


@dataclass
class _Request:
    events: Sequence[StoredEvent]
    done: Future[list[int]] = field(default_factory=Future)


class GroupCommitter:
    def __init__(
        self, recorder: ApplicationRecorder, *, max_events: int = MAX_GROUP_EVENTS, linger: float = LINGER_SECONDS
    ) -> None:
        self._recorder = recorder
        self._max_events = max_events
        self._linger = linger
        self._last_group_size = 1
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="quipu-group-commit", daemon=True)
        self._thread.start()
        self.groups = 0  # observability and tests: how many transactions were used

    def append(self, events: Sequence[StoredEvent]) -> list[int]:
        """Append ``events`` atomically; returns their notification ids. Blocks until durable."""
        request = _Request(events)
        self._queue.put(request)
        return request.done.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            size = len(first.events)
            # Under concurrency, wait a moment for the writers just released by the
            # previous commit to queue their next command: bigger groups, fewer commits.
            # A lone writer (previous group of one) never waits.
            linger = self._linger if self._last_group_size > 1 else 0.0
            while size < self._max_events:
                try:
                    nxt = self._queue.get(timeout=linger) if linger else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(group)
                    return
                group.append(nxt)
                size += len(nxt.events)
            self._last_group_size = len(group)
            self._commit(group)

    def _commit(self, group: list[_Request]) -> None:
        if len(group) == 1:
            self._commit_one(group[0])
            return
        try:
            ids = self._insert([e for r in group for e in r.events])
        except IntegrityError:
            for request in group:  # find the culprit; the others go through
                self._commit_one(request)
            return
        except BaseException as error:  # the database is unreachable, for instance
            for request in group:
                request.done.set_exception(error)
            return
        start = 0
        for request in group:
            request.done.set_result(ids[start : start + len(request.events)])
            start += len(request.events)

    def _commit_one(self, request: _Request) -> None:
        try:
            request.done.set_result(self._insert(request.events))
        except BaseException as error:
            request.done.set_exception(error)

    def _insert(self, events: Sequence[StoredEvent]) -> list[int]:
        self.groups += 1
        ids = self._recorder.insert_events(events)
        assert ids is not None and len(ids) == len(events)
        return list(ids)
