"""What the synchronous and asynchronous transports share: everything but the I/O.

Retries: a 429 is always retried (the rate limiter refused the request before it ran). A 503
and a dropped connection are retried only when repeating the call cannot do the work twice:
reads, ``PUT``/``DELETE`` (idempotent by definition), and writes that carry an
``Idempotency-Key`` (the resources add one to every create that accepts it, and keep it
across the retries, so a create that did happen is answered again instead of repeated).
The wait honours ``Retry-After`` (seconds or an HTTP date), else backs off exponentially.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import httpx
import msgspec

from quipu_client.errors import problem_error

T = TypeVar("T")
API_PREFIX = "/api/v1"
SAFE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRIED_STATUSES = frozenset({429, 503})
_encode = msgspec.json.Encoder().encode


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, the first included
    backoff: float = 0.25  # first wait when the server names none; doubles each time
    max_delay: float = 30.0  # never wait longer than this for one retry, whatever Retry-After says

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return min(self.backoff * 2.0 ** (attempt - 1), self.max_delay)


@dataclass(frozen=True)
class Prepared:
    """One call, ready to send as often as the retry policy allows."""

    method: str
    path: str
    params: list[tuple[str, str | int | float | bool | None]]
    headers: dict[str, str]
    content: bytes | None

    @property
    def repeatable(self) -> bool:
        return self.method in SAFE or "Idempotency-Key" in self.headers


def base_url(url: str) -> str:
    """Quipu's root, whether the user gave it with ``/api/v1`` or without."""
    return url.rstrip("/").removesuffix(API_PREFIX)


def prepare(
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    body: Any = None,
    idempotency_key: str | None = None,
    if_match: int | str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Prepared:
    out: dict[str, str] = dict(headers or {})
    content = None
    if body is not None:
        content = _encode(body)
        out["Content-Type"] = "application/json"
    if idempotency_key is not None:
        out["Idempotency-Key"] = idempotency_key
    if if_match is not None:
        out["If-Match"] = etag(if_match)
    return Prepared(method, path, query(params or {}), out, content)


def etag(version: int | str) -> str:
    """``If-Match`` for a version: Quipu's ETags are the version, quoted."""
    text = str(version)
    return text if text.startswith(('"', "W/")) else f'"{text}"'


def query(params: Mapping[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    """Query pairs: None left out, lists repeated, UUIDs, datetimes and booleans as the API reads them."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                pairs.append((name, _text(item)))
    return pairs


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date | UUID):
        return str(value)
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return (when - datetime.now(UTC)).total_seconds()


def should_retry(prepared: Prepared, response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    return response.status_code in RETRIED_STATUSES and prepared.repeatable


def decode(response: httpx.Response, expect: Any) -> Any:
    """The answer as ``expect`` (a model, ``str`` for text, None for no body); errors raise."""
    if response.status_code >= 400:
        raise problem_error(response)
    if expect is None:
        return None
    if expect is str:
        return response.text
    return msgspec.json.decode(response.content, type=expect)


def check(response: httpx.Response) -> None:
    """Raise the problem of a streaming answer that is an error (its body already read)."""
    if response.status_code >= 400:
        raise problem_error(response)
