"""The difference between two JSON states (the Analemma OS reference's checkpoint compare), three ways.

* ``added_keys`` / ``removed_keys`` / ``modified_keys`` and ``state_diff``: the top-level
  view of that reference, for a person scanning what a node changed;
* ``changes``: every changed leaf or subtree, addressed by an RFC 6901 JSON pointer, with
  the value before and after, for a UI that highlights the exact spot;
* ``patch``: the same change as an RFC 6902 JSON Patch, so a client (or a fork with a
  modified state) can turn the first state into the second with any JSON-patch library.

All three come from one walk, so they cannot disagree. Equality is JSON equality, not
Python's: ``true`` is not ``1`` and ``1`` is not ``1.0`` (both would otherwise hide a
real change of the recorded value behind Python's numeric tower). Keys are visited in
sorted order, so the same two states always give the same bytes.

Values in the result are the caller's objects, not copies: the diff is a read, and
copying a large state twice to protect it from a mutation nobody makes would be waste.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import msgspec

# Read-only views, so that callers' ``dict[str, list[int]]`` and the like are accepted
# (``dict`` and ``list`` are invariant); the walk itself looks for dicts and lists, which
# is what JSON decoders produce.
JSON: TypeAlias = "bool | int | float | str | Sequence[JSON] | Mapping[str, JSON] | None"
ChangeOp = Literal["added", "removed", "modified"]
PatchOpName = Literal["add", "remove", "replace"]


class ValueChange(msgspec.Struct, frozen=True):
    """A top-level key's value before and after (the Analemma OS reference's ``state_diff`` entries)."""

    before: Any
    after: Any


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One changed leaf or subtree. ``before`` is absent for an addition and ``after`` for
    a removal (``null`` would be ambiguous: it is a JSON value of its own)."""

    path: str
    op: ChangeOp
    before: Any | msgspec.UnsetType = msgspec.UNSET
    after: Any | msgspec.UnsetType = msgspec.UNSET


class PatchOp(msgspec.Struct, frozen=True, kw_only=True):
    """One RFC 6902 operation; ``value`` is absent for ``remove``."""

    op: PatchOpName
    path: str
    value: Any | msgspec.UnsetType = msgspec.UNSET


class StateDiff(msgspec.Struct, frozen=True, kw_only=True):
    added_keys: list[str]
    removed_keys: list[str]
    modified_keys: list[str]
    state_diff: dict[str, ValueChange]
    changes: list[Change]
    patch: list[PatchOp]

    @property
    def empty(self) -> bool:
        return not self.changes


def escape(key: str) -> str:
    """One reference token of an RFC 6901 pointer: ``~`` first, so ``/``'s escape is not
    itself escaped again."""
    return key.replace("~", "~0").replace("/", "~1")


def diff(before: JSON, after: JSON) -> StateDiff:
    """What changed from ``before`` to ``after``. Applying ``patch`` to ``before`` gives
    ``after``; equal states give an empty diff."""
    changes: list[Change] = []
    patch: list[PatchOp] = []
    _walk(before, after, "", changes, patch)
    added: list[str] = []
    removed: list[str] = []
    modified: list[str] = []
    state_diff: dict[str, ValueChange] = {}
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys()):
            if key not in after:
                removed.append(key)
            elif key not in before:
                added.append(key)
            elif not same(before[key], after[key]):
                modified.append(key)
                state_diff[key] = ValueChange(before[key], after[key])
    return StateDiff(
        added_keys=added,
        removed_keys=removed,
        modified_keys=modified,
        state_diff=state_diff,
        changes=changes,
        patch=patch,
    )


def _walk(before: Any, after: Any, path: str, changes: list[Change], patch: list[PatchOp]) -> None:
    # Containers are walked without comparing them first: an unchanged subtree simply
    # yields nothing, and each value is looked at once (comparing before descending
    # would cost the depth of the tree in repeated comparisons).
    if isinstance(before, dict) and isinstance(after, dict):
        # Keys are independent of each other, so the order of their operations is free;
        # sorted keeps the output stable.
        for key in sorted(before.keys() | after.keys()):
            at = f"{path}/{escape(key)}"
            if key not in after:
                changes.append(Change(path=at, op="removed", before=before[key]))
                patch.append(PatchOp(op="remove", path=at))
            elif key not in before:
                changes.append(Change(path=at, op="added", after=after[key]))
                patch.append(PatchOp(op="add", path=at, value=after[key]))
            else:
                _walk(before[key], after[key], at, changes, patch)
        return
    if isinstance(before, list) and isinstance(after, list):
        # Element-wise by index. The shared prefix changes in place (no index moves);
        # then either the tail is appended in ascending order (each add lands at the
        # current end) or the surplus is removed from the end backwards, so every
        # index named is still valid when its operation runs.
        common = min(len(before), len(after))
        for i in range(common):
            _walk(before[i], after[i], f"{path}/{i}", changes, patch)
        for i in range(common, len(after)):
            changes.append(Change(path=f"{path}/{i}", op="added", after=after[i]))
            patch.append(PatchOp(op="add", path=f"{path}/{i}", value=after[i]))
        for i in reversed(range(common, len(before))):
            changes.append(Change(path=f"{path}/{i}", op="removed", before=before[i]))
            patch.append(PatchOp(op="remove", path=f"{path}/{i}"))
        return
    if same(before, after):
        return
    # A leaf changed, or the type did (object <-> array <-> scalar): replace the subtree.
    changes.append(Change(path=path, op="modified", before=before, after=after))
    patch.append(PatchOp(op="replace", path=path, value=after))


def _kind(value: Any) -> type:
    # bool before int: in Python True is an int, in JSON it is not a number.
    if isinstance(value, bool):
        return bool
    for kind in (int, float, str, dict, list):
        if isinstance(value, kind):
            return kind
    return type(value)


def same(a: Any, b: Any) -> bool:
    """JSON equality: same type at every level (no ``True == 1``, no ``1 == 1.0``) and
    floats equal including the sign of zero (``-0.0`` and ``0.0`` are written apart)."""
    if a is b:
        return True
    kind = _kind(a)
    if kind is not _kind(b):
        return False
    if kind is dict:
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if kind is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if kind is float:
        return bool(a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    return bool(a == b)
