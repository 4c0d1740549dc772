"""Prometheus metrics of the bus side."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RELAY_PUBLISHED = Counter("quipu_relay_published_total", "Events published to JetStream by the relay")
RELAY_LAG = Gauge("quipu_relay_lag_seconds", "Age of the newest event the relay has published")
