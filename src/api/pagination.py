"""Response shapes shared by resources: pages of a list, and idempotent creates."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, description="items to skip")]


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


def created_headers(location: str, *, created_now: bool, **extra: str) -> dict[str, str]:
    """Headers of a 201: where the resource lives, and whether this answer replays the
    first one for the same ``Idempotency-Key``."""
    headers = {**extra, "Location": location}
    if not created_now:
        headers["Idempotent-Replayed"] = "true"
    return headers
