"""Server-sent events: one parser for the synchronous and asynchronous streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec


@dataclass(frozen=True)
class ServerEvent:
    """One message: ``event`` its type (progress, glass_box, hitp_required, error, completed),
    ``id`` the id of the event it reports (resume after it with ``last_event_id``), ``data``
    the decoded JSON."""

    event: str
    data: Any
    id: str | None = None


@dataclass
class SseParser:
    """Feed it lines (without their line ending); it returns an event at each blank line."""

    last_event_id: str | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> ServerEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):  # a comment: keep-alives, the replay's banner
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value or None
        return None

    def _dispatch(self) -> ServerEvent | None:
        if not self._data:
            self._event = ""
            return None
        text = "\n".join(self._data)
        try:
            data: Any = msgspec.json.decode(text)
        except msgspec.DecodeError:
            data = text
        event = ServerEvent(self._event or "message", data, self.last_event_id)
        self._event, self._data = "", []
        return event
