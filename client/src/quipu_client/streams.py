"""The work streams (tasks and notices): defined here, so that a worker started before Quipu
creates them exactly as Quipu would."""

from __future__ import annotations

from typing import Any

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from quipu_client.subjects import Subjects

DUPLICATE_WINDOW_SECONDS = 300.0


async def ensure_work_streams(js: Any, subjects: Subjects, *, replicas: int = 1) -> None:
    """The task work-queue (a message leaves once a worker acks it) and the notices stream,
    created with ``replicas`` when missing (Quipu passes its configured count)."""
    streams = [
        StreamConfig(
            name=subjects.tasks_stream,
            subjects=[subjects.all_tasks],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=replicas,
        ),
        StreamConfig(
            name=subjects.notices_stream,
            subjects=[subjects.all_notices],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=7 * 24 * 3600.0,
            num_replicas=replicas,
        ),
    ]
    for config in streams:
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
