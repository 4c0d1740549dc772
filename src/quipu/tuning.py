"""Process tuning applied once the long-lived objects exist.

CPython's cyclic GC otherwise walks every long-lived object (modules, pools, Litestar's
route tables) over and over; at the default thresholds those full passes show up as
20-30 ms stalls in the p99 of query endpoints. Freezing what exists at start-up and
collecting the young generation less often removes them (measured with ``make bench``).
"""

from __future__ import annotations

import gc
import os

DEFAULT_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    threshold = int(os.environ.get("QUIPU_GC_GEN0_THRESHOLD", DEFAULT_GEN0_THRESHOLD))
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)
