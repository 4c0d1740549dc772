"""Blame's pointer rules and last change, and bisect's search, against brute force."""

from __future__ import annotations

import json
from typing import Any

import jsonpointer
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.bisect import bisect, max_probes
from domain.blame import is_absent, last_change, parse_pointer, value_at
from domain.errors import ValidationFailed

MISSING = object()


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [("", ()), ("/", ("",)), ("/a/b", ("a", "b")), ("/a~1b/~0c", ("a/b", "~c")), ("/~01", ("~1",)), ("/0", ("0",))],
)
def test_pointers_are_read_as_rfc_6901_says(pointer: str, tokens: tuple[str, ...]) -> None:
    assert parse_pointer(pointer) == tokens


@pytest.mark.parametrize("pointer", ["a", "a/b", "/a~", "/a~2", "/~/x", "x" * 2001])
def test_what_is_not_a_pointer_is_a_422_naming_the_rule(pointer: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_pointer(pointer)
    assert [p.code for p in caught.value.problems] == ["invalid_pointer"]
    assert caught.value.problems[0].field == "path"


def test_values_are_found_in_objects_and_arrays_and_absent_otherwise() -> None:
    doc = {"a": [10, {"b": None}], "": 1, "01": 2}
    assert value_at(doc, ("a", "1", "b")) is None  # a JSON null is a value
    assert value_at(doc, ("",)) == 1
    assert value_at(doc, ("01",)) == 2
    for tokens in [("a", "01"), ("a", "-"), ("a", "2"), ("a", "0", "x"), ("b",), ("a", "x")]:
        assert is_absent(value_at(doc, tokens)), tokens


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([0.0, 1.0, "x", "y"]))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.sampled_from("ab"), inner, max_size=2)),
    max_leaves=4,
)
STATES = st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3), min_size=1, max_size=12)
POINTERS = st.sampled_from(["", "/a", "/b", "/a/a", "/a/0", "/a/b/a", "/c/1", "/zz"])


def _reference(state: Any, pointer: str) -> Any:
    return jsonpointer.resolve_pointer(state, pointer, MISSING)


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@given(states=STATES, pointer=POINTERS)
def test_the_blamed_version_is_the_last_whose_value_differs_from_the_one_before(
    states: list[dict[str, Any]], pointer: str
) -> None:
    values = [MISSING] + [_reference(s, pointer) for s in states]
    changed = [v for v in range(1, len(values)) if not _same(values[v - 1], values[v])]
    found = last_change(enumerate(states, start=1), parse_pointer(pointer))
    if not changed:
        assert found is None
        return
    assert found is not None
    assert found.version == changed[-1]
    assert found.changes == len(changed)
    before, after = values[found.version - 1], values[found.version]
    assert found.op == ("added" if before is MISSING else "removed" if after is MISSING else "modified")
    assert (is_absent(found.after) and after is MISSING) or _same(found.after, after)
    assert (is_absent(found.before) and before is MISSING) or _same(found.before, before)


@given(truth=st.lists(st.booleans(), max_size=200))
def test_bisect_finds_a_turn_to_true_in_logarithmic_probes(truth: list[bool]) -> None:
    head = len(truth)
    result = bisect(head, lambda version: truth[version - 1])
    assert len(result.probes) <= max_probes(head)
    assert len(set(result.probes)) == len(result.probes)
    if head == 0 or not truth[-1]:
        assert result.version is None
        return
    v = result.version
    assert v is not None and truth[v - 1] and (v == 1 or not truth[v - 2])


@given(head=st.integers(1, 5000), first=st.data())
def test_on_a_monotonic_condition_bisect_finds_the_first_version_where_it_holds(
    head: int, first: st.DataObject
) -> None:
    turn = first.draw(st.integers(1, head + 1))  # head + 1: it never holds
    result = bisect(head, lambda version: version >= turn)
    assert result.version == (turn if turn <= head else None)
    assert len(result.probes) <= max_probes(head)


def test_max_probes_is_one_plus_the_halvings() -> None:
    assert [max_probes(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 10_000)] == [0, 1, 2, 3, 3, 4, 4, 5, 15]
