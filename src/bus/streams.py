"""JetStream stream definitions: the event stream here; the work streams (tasks, notices) in
``quipu_client.streams``, so that a worker creates them as Quipu does."""

from __future__ import annotations

from typing import Any

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bus.subjects import Subjects
from quipu_client.streams import DUPLICATE_WINDOW_SECONDS, ensure_work_streams

__all__ = ["DUPLICATE_WINDOW_SECONDS", "ensure_event_stream", "ensure_work_streams", "last_message_id"]


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
