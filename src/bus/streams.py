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


async def last_message_id(js: Any, stream: str) -> str | None:
    """The ``Nats-Msg-Id`` of the stream's newest message, or None when it is empty."""
    info = await js.stream_info(stream)
    if not info.state.last_seq:
        return None
    try:
        message = await js.get_msg(stream, info.state.last_seq)
    except NotFoundError:
        return None
    return (message.headers or {}).get("Nats-Msg-Id")


async def ensure_work_streams(js: Any, subjects: Subjects) -> None:
    """The task work-queue (a message leaves once a worker acks it) and the notices stream."""
    streams = [
        StreamConfig(
            name=subjects.tasks_stream,
            subjects=[subjects.all_tasks],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        ),
        StreamConfig(
            name=subjects.notices_stream,
            subjects=[subjects.all_notices],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=7 * 24 * 3600.0,
        ),
    ]
    for config in streams:
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
