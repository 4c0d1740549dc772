"""Reciprocal rank fusion against hand-computed fusions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.rrf import fuse


def test_two_lists_hand_computed() -> None:
    # keyword: a b c; vector: c a d; k = 60
    fused = fuse([["a", "b", "c"], ["c", "a", "d"]])
    expected = {
        "a": 1 / 61 + 1 / 62,  # 0.032523
        "c": 1 / 63 + 1 / 61,  # 0.032266
        "b": 1 / 62,  # 0.016129
        "d": 1 / 63,  # 0.015873
    }
    assert [f.key for f in fused] == ["a", "c", "b", "d"]
    for f in fused:
        assert f.score == pytest.approx(expected[f.key], rel=1e-12)
    assert {f.key: f.ranks for f in fused} == {"a": (1, 2), "c": (3, 1), "b": (2, None), "d": (None, 3)}


def test_an_item_in_both_lists_beats_a_better_single_rank() -> None:
    # x: first in one list only (1/61 = 0.01639); y: fifth in both (2/65 = 0.03077).
    fused = fuse([["x", "a", "b", "c", "y"], ["d", "e", "f", "g", "y"]])
    assert fused[0].key == "y"
    assert fused[0].score == pytest.approx(2 / 65)
    assert fused[1].key == "x"


def test_k_changes_the_balance() -> None:
    # k = 0: a = c = 1/1 beat b = 1/2 + 1/3 = 0.833; k = 60: b = 1/62 + 1/63 = 0.0320 beats a = 1/61.
    lists = [["a", "b"], ["c", "d", "b"]]
    at_zero = fuse(lists, k=0)
    assert [f.key for f in at_zero] == ["a", "c", "b", "d"]
    assert [f.score for f in at_zero] == pytest.approx([1.0, 1.0, 1 / 2 + 1 / 3, 1 / 2])
    assert [f.key for f in fuse(lists, k=60)] == ["b", "a", "c", "d"]


def test_ties_are_broken_deterministically() -> None:
    # Mirrored ranks give bit-identical scores; the item ranked 1st in the earlier list wins.
    fused = fuse([["x", "y"], ["y", "x"]])
    assert fused[0].score == fused[1].score
    assert [f.key for f in fused] == ["x", "y"]
    # Single-list items at the same rank: the earlier list first, then by rank.
    assert [f.key for f in fuse([["p", "r"], ["q", "s"]])] == ["p", "q", "r", "s"]
    # Same input, same output, every time.
    lists = [list("abcdefgh"), list("hgfedcba")]
    assert [f.key for f in fuse(lists)] == [f.key for f in fuse(lists)]


def test_edge_cases() -> None:
    assert fuse([]) == []
    assert fuse([[], []]) == []
    only = fuse([[], ["a", "b"]])
    assert [(f.key, f.ranks) for f in only] == [("a", (None, 1)), ("b", (None, 2))]
    # A repeated key counts once, at its first rank.
    dup = fuse([["a", "b", "a"]])
    assert [(f.key, f.ranks) for f in dup] == [("a", (1,)), ("b", (2,))]
    assert dup[0].score == pytest.approx(1 / 61)
    with pytest.raises(ValueError):
        fuse([["a"]], k=-1)


@given(
    st.lists(st.lists(st.integers(0, 30), unique=True, max_size=20), min_size=1, max_size=4),
    st.integers(0, 100),
)
def test_scores_are_the_sum_of_reciprocal_ranks(lists: list[list[int]], k: int) -> None:
    fused = fuse(lists, k=k)
    assert sorted(f.key for f in fused) == sorted({x for lst in lists for x in lst})
    for f in fused:
        expected = sum(1 / (k + lst.index(f.key) + 1) for lst in lists if f.key in lst)
        assert math.isclose(f.score, expected, rel_tol=1e-12)
        assert f.ranks == tuple(lst.index(f.key) + 1 if f.key in lst else None for lst in lists)
    scores = [f.score for f in fused]
    assert scores == sorted(scores, reverse=True)
