"""The decision-condition grammar: parsed and evaluated without eval."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.conditions import ConditionError, parse

STATE: dict[str, Any] = {
    "score": 0.7,
    "n": 3,
    "name": "ada",
    "tags": ["a", "b"],
    "review": {"ok": True, "by": "bob"},
    "empty": [],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state.score > 0.5", True),
        ("score > 0.5 and not review.ok", False),
        ("'a' in tags", True),
        ("n not in tags", True),
        ("missing == null", True),
        ("len(tags) == 2 and len(empty) == 0", True),
        ("exists(review.by) and not exists(review.nobody)", True),
        ("tags[1] == 'b' and tags[5] == null", True),
        ("'3' == n", False),  # different kinds are never equal
        ("true == 1", False),
        ("name < 5", False),  # ordering across kinds is false, not an error
        ('(n == 3 or n == 4) and name == "ada"', True),
        ("review", True),
        ("empty", False),
        ("'d' in name", True),
    ],
)
def test_conditions(text: str, expected: bool) -> None:
    assert parse(text).evaluate(STATE) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "score >",
        "score > > 1",
        "(n == 3",
        "import os",
        "a.1",
        "tags[1.5]",
        "x == 'unterminated",
        "__class__ == 1 ; 2",
        "len tags",
        "and",
    ],
)
def test_malformed_conditions_are_refused(text: str) -> None:
    with pytest.raises(ConditionError):
        parse(text)


def test_nesting_and_length_are_bounded() -> None:
    with pytest.raises(ConditionError):
        parse("(" * 60 + "1" + ")" * 60)
    with pytest.raises(ConditionError):
        parse("n == 1 or " * 300 + "n == 1")


NAMES = ["a", "b", "c"]


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> tuple[str, str]:
    """The same boolean expression in the grammar and in Python (numbers only)."""
    if depth > 3 or draw(st.booleans()):
        left = draw(st.sampled_from(NAMES))
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        right = draw(st.integers(-3, 3))
        return f"{left} {op} {right}", f"({left} {op} {right})"
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        ours, py = draw(expressions(depth + 1))
        return f"not ({ours})", f"(not {py})"
    (l_ours, l_py), (r_ours, r_py) = draw(expressions(depth + 1)), draw(expressions(depth + 1))
    return f"({l_ours}) {kind} ({r_ours})", f"({l_py} {kind} {r_py})"


@given(expressions(), st.fixed_dictionaries({name: st.integers(-3, 3) for name in NAMES}))
def test_boolean_logic_agrees_with_python(expr: tuple[str, str], state: dict[str, int]) -> None:
    ours, python = expr
    # The reference is Python's own evaluation of a generated expression (never user input).
    assert parse(ours).evaluate(state) is bool(eval(python, {"__builtins__": {}}, dict(state)))
