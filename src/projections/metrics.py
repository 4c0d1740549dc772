"""Prometheus metrics of the projectors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PROJECTION_APPLIED = Counter("quipu_projection_applied_total", "Events applied to a read model", ["projection"])
PROJECTION_ERRORS = Counter("quipu_projection_errors_total", "Events a projection failed to apply", ["projection"])
PROJECTION_LAG = Gauge("quipu_projection_lag_seconds", "Age of the newest event applied", ["projection"])
