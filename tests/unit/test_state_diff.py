"""The state diff of checkpoint compare: hand-written cases, and a property test that a
reference JSON-patch library turns the first state into the second with our patch."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.state_diff import Change, PatchOp, StateDiff, ValueChange, diff, escape, same

_canonical = msgspec.json.Encoder(order="sorted")


def _apply(before: Any, d: StateDiff) -> Any:
    """The patch as a client receives it (JSON), applied by the reference library."""
    document = msgspec.json.decode(msgspec.json.encode(d.patch))
    return jsonpatch.apply_patch(before, document)


def _identical(a: Any, b: Any) -> bool:
    # Python's == says True == 1 == 1.0 and -0.0 == 0.0; the JSON texts do not.
    return _canonical.encode(a) == _canonical.encode(b)


def test_equal_states_give_an_empty_diff() -> None:
    state: dict[str, Any] = {"a": [1, {"b": None}], "c": {"d": 1.5, "e": "x"}}
    d = diff(state, copy.deepcopy(state))
    assert d.empty and d.patch == [] and d.state_diff == {}
    assert d.added_keys == d.removed_keys == d.modified_keys == []
    assert diff({}, {}).empty and diff(None, None).empty and diff([], []).empty


def test_the_seed_example_top_level_view() -> None:
    before: dict[str, Any] = {"counter": 5, "status": "processing", "temp_data": [1], "same": {"x": 1}}
    after: dict[str, Any] = {"counter": 10, "status": "validated", "new_variable": True, "same": {"x": 1}}
    d = diff(before, after)
    assert d.added_keys == ["new_variable"]
    assert d.removed_keys == ["temp_data"]
    assert d.modified_keys == ["counter", "status"]
    assert d.state_diff == {
        "counter": ValueChange(before=5, after=10),
        "status": ValueChange(before="processing", after="validated"),
    }
    assert msgspec.to_builtins(d.state_diff) == {
        "counter": {"before": 5, "after": 10},
        "status": {"before": "processing", "after": "validated"},
    }
    assert d.patch == [
        PatchOp(op="replace", path="/counter", value=10),
        PatchOp(op="add", path="/new_variable", value=True),
        PatchOp(op="replace", path="/status", value="validated"),
        PatchOp(op="remove", path="/temp_data"),
    ]
    assert _apply(before, d) == after


def test_nested_changes_are_addressed_by_json_pointers() -> None:
    before: dict[str, Any] = {
        "outputs": {"fetch": {"pages": 3, "urls": ["a"]}, "search": {"hits": 1}},
        "input": {"q": "x"},
    }
    after: dict[str, Any] = {"outputs": {"fetch": {"pages": 4, "urls": ["a"]}, "search": {}}, "input": {"q": "x"}}
    d = diff(before, after)
    assert d.changes == [
        Change(path="/outputs/fetch/pages", op="modified", before=3, after=4),
        Change(path="/outputs/search/hits", op="removed", before=1),
    ]
    assert d.modified_keys == ["outputs"] and d.added_keys == d.removed_keys == []
    # the top-level view shows the whole value of a modified key, the nested view the spot
    assert d.state_diff["outputs"] == ValueChange(before["outputs"], after["outputs"])
    assert _apply(before, d) == after
    # absent sides are left out of the JSON, so an added null is told apart from a removal
    encoded = msgspec.to_builtins(diff({"a": 1}, {"b": None}).changes)
    assert encoded == [{"path": "/a", "op": "removed", "before": 1}, {"path": "/b", "op": "added", "after": None}]
    assert msgspec.to_builtins(diff({"a": 1}, {}).patch) == [{"op": "remove", "path": "/a"}]


def test_lists_are_diffed_by_index_and_shrink_from_the_end() -> None:
    before = {"xs": [1, 2, 3, 4, 5]}
    after = {"xs": [1, 9]}
    d = diff(before, after)
    assert [(p.op, p.path) for p in d.patch] == [
        ("replace", "/xs/1"),
        ("remove", "/xs/4"),
        ("remove", "/xs/3"),
        ("remove", "/xs/2"),
    ]
    assert _apply(before, d) == after
    grown = diff(after, before)
    assert [(p.op, p.path, p.value) for p in grown.patch] == [
        ("replace", "/xs/1", 2),
        ("add", "/xs/2", 3),
        ("add", "/xs/3", 4),
        ("add", "/xs/4", 5),
    ]
    assert _apply(after, grown) == before
    nested = diff([{"a": [1]}, 2], [{"a": [1, 2]}])
    assert [(c.op, c.path) for c in nested.changes] == [("added", "/0/a/1"), ("removed", "/1")]
    assert _apply([{"a": [1]}, 2], nested) == [{"a": [1, 2]}]


def test_type_changes_replace_the_subtree() -> None:
    before: dict[str, Any] = {"a": {"x": 1}, "b": [1], "c": 1, "d": True, "e": 1, "f": None, "g": 0.0}
    after: dict[str, Any] = {"a": [1], "b": "s", "c": 1.0, "d": 1, "e": True, "f": {}, "g": -0.0}
    d = diff(before, after)
    assert d.modified_keys == ["a", "b", "c", "d", "e", "f", "g"]
    assert all(p.op == "replace" for p in d.patch) and len(d.patch) == 7
    assert d.changes[0] == Change(path="/a", op="modified", before={"x": 1}, after=[1])
    assert _identical(_apply(before, d), after)
    # the whole document can change type too: the pointer "" is the root
    root = diff({"a": 1}, [1])
    assert root.patch == [PatchOp(op="replace", path="", value=[1])]
    assert root.added_keys == root.removed_keys == root.modified_keys == []
    assert _apply({"a": 1}, root) == [1]


def test_keys_needing_escapes() -> None:
    assert escape("a/b") == "a~1b" and escape("~1") == "~01" and escape("~/") == "~0~1"
    before: dict[str, Any] = {"a/b": {"c~d": 1}, "~1": 0, "": {"": 1}}
    after: dict[str, Any] = {"a/b": {"c~d": 2}, "~1": 0, "": {"": 2}, "x/~": None}
    d = diff(before, after)
    assert [c.path for c in d.changes] == ["//", "/a~1b/c~0d", "/x~1~0"]
    assert d.added_keys == ["x/~"] and d.modified_keys == ["", "a/b"]
    assert _apply(before, d) == after


def test_json_equality_is_not_python_equality() -> None:
    assert same({"a": [1, "x", None]}, {"a": [1, "x", None]})
    assert not same(True, 1) and not same(1, 1.0) and not same(0.0, -0.0) and not same([], {})
    assert not same({"a": 1}, {"b": 1}) and not same([1], [1, 1])


def test_the_diff_is_deterministic() -> None:
    before = {k: i for i, k in enumerate("zyxwvu")}
    after = {k: i + 10 for i, k in enumerate("uvwxyz")}
    first, second = diff(before, after), diff(dict(reversed(before.items())), after)
    assert _canonical.encode(first) == _canonical.encode(second)
    assert [c.path for c in first.changes] == ["/u", "/v", "/w", "/x", "/y", "/z"]


# Keys are drawn from a small alphabet with the characters RFC 6901 escapes, so keys
# collide across states (exercising modified keys) and need escaping.
keys = st.text(alphabet="ab~/0 ", max_size=3)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values, json_values)
def test_applying_the_patch_to_the_first_state_gives_the_second(a: Any, b: Any) -> None:
    d = diff(a, b)
    original = copy.deepcopy(a)
    assert _identical(_apply(a, d), b)
    assert _identical(a, original)  # the diff leaves its input alone
    assert d.empty == _identical(a, b) and (d.patch == []) == d.empty
    if isinstance(a, dict) and isinstance(b, dict):
        assert d.added_keys == sorted(b.keys() - a.keys())
        assert d.removed_keys == sorted(a.keys() - b.keys())
        assert d.modified_keys == sorted(k for k in a.keys() & b.keys() if not _identical(a[k], b[k]))
        assert sorted(d.state_diff) == d.modified_keys
        assert all(_identical(v.before, a[k]) and _identical(v.after, b[k]) for k, v in d.state_diff.items())
    else:
        assert d.added_keys == d.removed_keys == d.modified_keys == [] and d.state_diff == {}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=6), st.data())
def test_a_state_and_a_mutation_of_it(a: dict[str, Any], data: st.DataObject) -> None:
    """Random pairs rarely share structure; a mutated copy exercises nested and list diffs."""
    b = copy.deepcopy(a)
    for key in data.draw(st.lists(st.sampled_from(sorted(a)), max_size=3)) if a else []:
        value = b[key]
        if isinstance(value, list) and value:
            value[data.draw(st.integers(0, len(value) - 1))] = data.draw(json_values)
            value.extend(data.draw(st.lists(json_values, max_size=2)))
        elif isinstance(value, dict):
            value[data.draw(keys)] = data.draw(json_values)
        else:
            b[key] = data.draw(json_values)
    b[data.draw(keys)] = data.draw(json_values)
    d = diff(a, b)
    assert _identical(_apply(a, d), b)
    for change in d.changes:
        tokens = change.path.split("/")[1:]
        assert tokens and tokens[0].replace("~1", "/").replace("~0", "~") in set(d.modified_keys) | set(d.added_keys)
