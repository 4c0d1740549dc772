"""The one backoff rule: exponential, capped. Node retries, projector retries of a failed
event and the processes' reconnect loops all wait by it (each with its own base and cap)."""

from __future__ import annotations

#: Beyond this many doublings every practical base has long passed its cap; bounding the
#: exponent keeps ``2.0 ** n`` from overflowing after a very long run of failures.
_MAX_EXPONENT = 1000


def exponential_backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failure number ``attempt`` (1-based): ``base`` after the first,
    doubling after each further one, never more than ``cap``."""
    return min(base * 2.0 ** min(max(attempt - 1, 0), _MAX_EXPONENT), cap)
