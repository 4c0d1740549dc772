"""Response shapes shared by resources: pages of a list, and idempotent creates."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import QueryParameter

T = TypeVar("T")

# Every integer a client sends is bounded, so none reaches Postgres out of range (an offset
# past bigint was a 500): past these the answer is a 422 naming the parameter.
MAX_OFFSET = 1_000_000_000  # far past any real list; paging deeper than this is not paging
MAX_VERSION = 2**62  # stream versions and positions: bigint with room to spare
MAX_DEPTH = 1_000_000  # DAG depths (an int column); no causal chain is this long

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="items to skip")]


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
