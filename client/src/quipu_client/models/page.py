"""A page of a list: the items, how many there are in all, and where this page starts."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], kw_only=True):
    items: list[T]
    total: int
    limit: int
    offset: int
