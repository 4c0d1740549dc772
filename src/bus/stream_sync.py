"""Creating a JetStream stream, or bringing an existing one to the configuration Quipu wants.

JetStream refuses some changes to a stream that exists (its storage type, a retention change
to or from a work queue, more replicas than the cluster has servers, or any replicas above one
on a server that is not clustered). Such a refusal is logged as ``stream_update_refused``
with the server's reason, and Quipu goes on with the stream as it is: stopping the relay would
stop every projector and the dispatcher too, while the stream still works (with fewer replicas,
or other limits, than asked for). The log in Postgres stays the source of truth either way.
A stream that cannot be *created* at all raises :class:`StreamRefused`.

One change Quipu refuses by itself: more replicas for a *chained* stream (the event stream,
whose relay sends ``Nats-Expected-Last-Msg-Id``). Followers added by a scale-up do not know
the stream's last message id, so nats-server (2.15) fails them on the next chained message
("last msgid mismatch", a critical write error) and the stream loses its quorum: publishes
time out. Such a stream is created with its replicas from the start (every role creates it
with the configured ones), and scaling an existing one is an operator's step
(docs/architecture.md, Clustered NATS).
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, Final

import structlog
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NotFoundError

__all__ = ["StreamRefused", "differences", "sync_stream"]

log = structlog.get_logger(__name__)

#: The fields Quipu decides; anything else an operator set on the stream is kept as it is.
MANAGED_FIELDS: Final = ("subjects", "retention", "storage", "num_replicas", "max_bytes", "max_age", "duplicate_window")
#: Why a chained stream is not scaled up (see the module docstring).
SCALE_UP_REFUSED: Final = (
    "more replicas for a stream published with Nats-Expected-Last-Msg-Id: the new followers would fail "
    "('last msgid mismatch') and the stream lose its quorum; scale it up by hand with the relay stopped, "
    "then restart each nats-server once"
)
#: JetStream's "stream name already in use" (another process created it first).
_NAME_IN_USE: Final = 10058


class StreamRefused(RuntimeError):
    """JetStream would not create a stream as configured."""

    def __init__(self, stream: str, reason: str) -> None:
        super().__init__(f"JetStream refused to create stream {stream}: {reason}")
        self.stream = stream
        self.reason = reason


def _normal(name: str, value: Any) -> Any:
    """One spelling per meaning: the server says -1 or 0 where the configuration says None."""
    if isinstance(value, Enum):
        value = value.value
    if name == "num_replicas":
        return value or 1
    if name == "max_bytes":
        return -1 if value is None or value <= 0 else int(value)
    if name in ("max_age", "duplicate_window"):
        return 0.0 if value is None else round(float(value), 3)
    if name == "subjects":
        return sorted(value or [])
    return value


def differences(current: StreamConfig, desired: StreamConfig) -> dict[str, tuple[Any, Any]]:
    """The managed fields where ``current`` differs from ``desired``: name -> (current, desired)."""
    out = {}
    for name in MANAGED_FIELDS:
        have, want = _normal(name, getattr(current, name)), _normal(name, getattr(desired, name))
        if have != want:
            out[name] = (have, want)
    return out


async def sync_stream(
    js: Any, desired: StreamConfig, *, update: bool, chained: bool = False
) -> dict[str, tuple[Any, Any]]:
    """Create ``desired`` if it is missing; with ``update``, bring an existing stream to it.
    ``chained``: messages carry ``Nats-Expected-Last-Msg-Id``, so no scale-up (see above).

    Returns the changes that were needed but not applied (empty when the stream matches, was
    created, was updated, or ``update`` is false).
    """
    assert desired.name is not None
    try:
        info = await js.stream_info(desired.name)
    except NotFoundError:
        try:
            await js.add_stream(desired)
        except APIError as error:
            if error.err_code != _NAME_IN_USE:
                raise StreamRefused(desired.name, str(error.description)) from error
            info = await js.stream_info(desired.name)  # lost the race: update it as any other
        else:
            log.info("stream_created", stream=desired.name, replicas=desired.num_replicas)
            return {}
    if not update:
        return {}
    changes = differences(info.config, desired)
    refused: dict[str, tuple[Any, Any]] = {}
    replicas = changes.get("num_replicas")
    if chained and replicas is not None and replicas[1] > replicas[0]:
        refused["num_replicas"] = changes.pop("num_replicas")
        _log_refused(desired.name, SCALE_UP_REFUSED, None, refused)
    if not changes:
        return refused
    wanted = {name: getattr(desired, name) for name in changes}
    try:
        await js.update_stream(dataclasses.replace(info.config, **wanted))
    except APIError as error:
        _log_refused(desired.name, str(error.description), error.err_code, changes)
        return refused | changes
    log.info("stream_updated", stream=desired.name, changes={name: want for name, (_, want) in changes.items()})
    return refused


def _log_refused(stream: str, reason: str, err_code: int | None, changes: dict[str, tuple[Any, Any]]) -> None:
    log.error(
        "stream_update_refused",
        stream=stream,
        reason=reason,
        err_code=err_code,
        changes={name: {"current": have, "configured": want} for name, (have, want) in changes.items()},
    )
