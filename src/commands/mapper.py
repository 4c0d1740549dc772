"""msgspec Mapper: events are stored as canonical JSON under their kind, never pickled."""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent

from commands.limits import DEFAULT_MAX_EVENT_BYTES, EventTooLarge
from domain.events import DomainEvent, event_class
from domain.hashing import canonical_encoding
from domain.upcasting import UpcastError, needs_upcasting, upcast_state

_encode = msgspec.json.Encoder().encode


class MsgspecMapper(Mapper[Any]):
    """The stored ``topic`` is the event kind, so renaming a Python class breaks nothing.

    Events of a kind past schema version 1 are upcast on the way out (``domain.upcasting``):
    an aggregate always replays its history in the current shape, whatever shape it was
    stored in; the stored bytes are never rewritten.

    Every event of a save is mapped before the append starts, so an event over
    ``max_event_bytes`` refuses the whole command with nothing written.
    """

    def __init__(self, *args: Any, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_event_bytes = max_event_bytes

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        assert isinstance(domain_event, DomainEvent)
        state = canonical_encoding(domain_event)
        if len(state) > self.max_event_bytes:
            raise EventTooLarge(domain_event.KIND, len(state), self.max_event_bytes)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=domain_event.KIND,
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        kind = stored_event.topic
        try:
            cls = event_class(kind)
            if not needs_upcasting(kind, stored_event.state):
                # Fast path: the stored bytes are already in the current shape.
                return msgspec.json.decode(stored_event.state, type=cls)
            # An evolved kind: upcast the stored payload, then decode it as the current class.
            current = upcast_state(kind, msgspec.json.decode(stored_event.state))
            return msgspec.json.decode(_encode(current), type=cls)
        except (msgspec.DecodeError, msgspec.ValidationError, UpcastError) as error:
            raise MapperDeserialisationError(
                f"cannot decode {stored_event.topic} {stored_event.originator_id}"
                f"@{stored_event.originator_version}: {error}"
            ) from error
