"""JetStream stream definitions."""

from __future__ import annotations

from typing import Any

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bus.subjects import Subjects

DUPLICATE_WINDOW_SECONDS = 300.0


async def ensure_event_stream(js: Any, subjects: Subjects) -> None:
    """One file-backed stream for all events; dedup window covers relay retries."""
    config = StreamConfig(
        name=subjects.events_stream,
        subjects=[subjects.all_events],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )
    try:
        await js.stream_info(subjects.events_stream)
    except NotFoundError:
        await js.add_stream(config)
