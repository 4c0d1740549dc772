"""Bisect: the first event after which a condition holds on a run's state, by binary search.

``holds(version)`` tells whether the condition holds on the state right after the run's
event number ``version`` (a state-as-of read; nothing is re-run). Before the first event
there is no state, so the condition is taken not to hold there (version 0).

The search first probes the last event: if the condition does not hold at the end, there
is nothing to find. Otherwise it keeps an interval ``(lo, hi]`` with the condition false at
``lo`` and true at ``hi`` and halves it, so it takes ``1 + ceil(log2(head))`` probes at most.

It answers an event where the condition *became* true: false right before it, true right
after. For a monotonic condition (once true, true for the rest of the run, as most are:
"a key exists", "a counter reached N") that is the first event after which it holds. If the
condition turns true, false and true again, the answer is one of the events where it turned
true, not necessarily the first; the caller says so (``assumes_monotonic``) rather than
probing every event, which would no longer be a bisection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BisectResult:
    head: int  # the run's last version when the search began
    version: int | None  # the event found; None: the condition does not hold at the end
    probes: list[int] = field(default_factory=list)  # the versions probed, in order


def bisect(head: int, holds: Callable[[int], bool]) -> BisectResult:
    """Binary search over versions ``1..head`` for an event where ``holds`` turns true."""
    probes: list[int] = []

    def probe(version: int) -> bool:
        probes.append(version)
        return holds(version)

    if head < 1 or not probe(head):
        return BisectResult(head, None, probes)
    lo, hi = 0, head  # holds(lo) is false (version 0: before the run), holds(hi) is true
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe(mid):
            hi = mid
        else:
            lo = mid
    return BisectResult(head, hi, probes)


def max_probes(head: int) -> int:
    """The most probes ``bisect`` makes on ``head`` versions: the end, then the halvings."""
    return 0 if head < 1 else 1 + (head - 1).bit_length()
