"""JetStream stream definitions: the event stream here; the work streams (tasks, notices) in
``quipu_client.streams``, so that a worker creates them as Quipu does.

:class:`StreamSettings` carries what the deployment configures (``QUIPU_NATS_REPLICAS``,
``QUIPU_NATS_EVENTS_MAX_BYTES``, ``QUIPU_NATS_EVENTS_MAX_AGE``). Every role may create the
event stream when it is missing, with the process's settings (:func:`use_stream_settings`,
called by the wiring), so a cluster's stream has its replicas from the start; only the relay
(one leader at a time) passes its settings explicitly and so brings an existing stream to them
(see :mod:`bus.stream_sync`).
Limits on the event stream are safe because the log in Postgres is the source of truth:
consumers that fall behind the retained messages catch up from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bus.stream_sync import StreamRefused, sync_stream
from bus.subjects import Subjects
from quipu_client.streams import DUPLICATE_WINDOW_SECONDS
from quipu_client.streams import ensure_work_streams as _ensure_work_streams

__all__ = [
    "DUPLICATE_WINDOW_SECONDS",
    "StreamRefused",
    "StreamSettings",
    "ensure_event_stream",
    "ensure_work_streams",
    "event_stream_config",
    "last_message_id",
    "process_stream_settings",
    "use_stream_settings",
]

#: JetStream's largest replication factor.
MAX_REPLICAS: Final = 5


@dataclass(frozen=True)
class StreamSettings:
    """How Quipu's streams are stored: replicas for each, limits for the event stream.

    ``events_max_bytes`` / ``events_max_age`` (seconds) of None keep every event; the oldest
    are dropped first once a limit is reached.
    """

    replicas: int = 1
    events_max_bytes: int | None = None
    events_max_age: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise ValueError(f"QUIPU_NATS_REPLICAS must be 1 to {MAX_REPLICAS}, not {self.replicas}")
        if self.events_max_bytes is not None and self.events_max_bytes <= 0:
            raise ValueError("QUIPU_NATS_EVENTS_MAX_BYTES must be a positive number of bytes (unset: no limit)")
        # JetStream refuses a duplicate window longer than the stream's max age, and a shorter
        # window would let a relay retry publish an event twice.
        if self.events_max_age is not None and self.events_max_age < DUPLICATE_WINDOW_SECONDS:
            raise ValueError(
                f"QUIPU_NATS_EVENTS_MAX_AGE must be at least {DUPLICATE_WINDOW_SECONDS:.0f} seconds "
                "(the relay's deduplication window); unset: no limit"
            )


_process_settings = StreamSettings()


def use_stream_settings(settings: StreamSettings) -> None:
    """The settings a stream of this process is created with when none are passed.

    Why not one replica and let the relay scale it up: JetStream followers that joined a stream
    by a scale-up refuse the relay's next ``Nats-Expected-Last-Msg-Id`` message ("last msgid
    mismatch", a critical write error), and the stream then has no quorum to fail over with.
    """
    global _process_settings
    _process_settings = settings


def process_stream_settings() -> StreamSettings:
    """What :func:`use_stream_settings` set (one replica, no limits, by default)."""
    return _process_settings


def event_stream_config(subjects: Subjects, settings: StreamSettings) -> StreamConfig:
    """One file-backed stream for all events; the dedup window covers relay retries."""
    return StreamConfig(
        name=subjects.events_stream,
        subjects=[subjects.all_events],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=settings.replicas,
        max_bytes=settings.events_max_bytes,
        max_age=settings.events_max_age,
    )


async def ensure_event_stream(js: Any, subjects: Subjects, settings: StreamSettings | None = None) -> None:
    """Create the event stream if it is missing; with ``settings``, also update it to them."""
    config = event_stream_config(subjects, settings or _process_settings)
    await sync_stream(js, config, update=settings is not None, chained=True)  # the relay's chain


async def ensure_work_streams(js: Any, subjects: Subjects) -> None:
    """The work streams as a worker makes them, created with this process's replicas when missing
    (no update of existing ones: a worker that started first may have made them with one)."""
    await _ensure_work_streams(js, subjects, replicas=_process_settings.replicas)


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
