"""Blame: which event last set a part of a run's state (docs/architecture.md, API map).

A part of the state is named by an RFC 6901 JSON pointer (``/outputs/fetch/pages``; ``""``
is the whole state). Walking the states a run had right after each of its events, oldest
first, the blamed event is the last one after which the value at the pointer differs from
the value just before it (JSON equality, ``domain.state_diff.same``): the event that set
it, or removed it when it is gone now. A pointer whose value never existed has no blame.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from domain.errors import FieldProblem, ValidationFailed
from domain.state_diff import same

MAX_POINTER_LENGTH = 2000
_BAD_TILDE = re.compile(r"~(?![01])")
_ABSENT: Any = object()  # no value at the pointer (JSON has no value for "missing")
ChangeOp = Literal["added", "modified", "removed"]


def parse_pointer(pointer: str, field: str = "path") -> tuple[str, ...]:
    """The reference tokens of an RFC 6901 pointer, unescaped; 422 ``invalid_pointer``
    when it is not one (it must be empty or start with ``/``; ``~`` only as ``~0``/``~1``)."""
    if len(pointer) > MAX_POINTER_LENGTH:
        raise _invalid(field, f"a pointer has at most {MAX_POINTER_LENGTH} characters")
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise _invalid(field, f"'{pointer}' is not a JSON pointer: it must start with '/' (or be empty)")
    tokens = []
    for raw in pointer[1:].split("/"):
        if _BAD_TILDE.search(raw):
            raise _invalid(field, f"'{raw}' has a '~' that is not '~0' or '~1'")
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tuple(tokens)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldProblem(field, message, "invalid_pointer")])


def value_at(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value the tokens name in ``document``, or the module's absent marker."""
    current = document
    for token in tokens:
        if isinstance(current, Mapping):
            if token not in current:
                return _ABSENT
            current = current[token]
        elif isinstance(current, list):
            # RFC 6901 array indexes: decimal digits without leading zeros ('-' names no element).
            if not token.isdigit() or (token != "0" and token.startswith("0")) or int(token) >= len(current):
                return _ABSENT
            current = current[int(token)]
        else:
            return _ABSENT
    return current


def is_absent(value: Any) -> bool:
    return value is _ABSENT


@dataclass(frozen=True)
class Blamed:
    """The version of the event that last changed the value, and what it did."""

    version: int
    op: ChangeOp
    before: Any  # the absent marker for "added" (test with is_absent)
    after: Any  # the absent marker for "removed"
    changes: int  # how many events changed the value in all


def last_change(states: Iterable[tuple[int, Any]], tokens: tuple[str, ...]) -> Blamed | None:
    """Over ``(version, state right after it)`` oldest first (the first version's
    "before" is the empty run: nothing at any pointer), the last version that changed the
    value at ``tokens``; None if it never had a value."""
    previous: Any = _ABSENT
    found: Blamed | None = None
    count = 0
    for version, state in states:
        value = value_at(state, tokens)
        if is_absent(value) and is_absent(previous):
            continue
        if is_absent(value) or is_absent(previous) or not same(previous, value):
            count += 1
            op: ChangeOp = "added" if is_absent(previous) else "removed" if is_absent(value) else "modified"
            found = Blamed(version, op, previous, value, count)
        previous = value
    if found is None:
        return None
    return Blamed(found.version, found.op, found.before, found.after, count)
