"""msgspec Mapper: events are stored as canonical JSON under their kind, never pickled."""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent

from commands.limits import DEFAULT_MAX_EVENT_BYTES, EventTooLarge
from domain.events import DomainEvent, event_class
from domain.hashing import canonical_encoding


class MsgspecMapper(Mapper[Any]):
    """The stored ``topic`` is the event kind, so renaming a Python class breaks nothing.

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
        try:
            return msgspec.json.decode(stored_event.state, type=event_class(stored_event.topic))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise MapperDeserialisationError(
                f"cannot decode {stored_event.topic} {stored_event.originator_id}"
                f"@{stored_event.originator_version}: {error}"
            ) from error
