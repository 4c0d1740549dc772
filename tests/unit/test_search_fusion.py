"""Weighted score fusion against hand-computed fusions and a brute-force reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.search_fusion import KEYWORD_WEIGHT, weighted_fuse


def test_two_lists_hand_computed() -> None:
    keyword = [("a", 10.0), ("b", 5.0)]
    vector = [("b", 0.8), ("c", 0.4), ("d", -0.2)]
    fused = weighted_fuse(keyword, vector, keyword_weight=0.3)
    expected = {"b": 0.3 * 0.5 + 0.7 * 1.0, "c": 0.7 * 0.5, "a": 0.3 * 1.0, "d": 0.0}  # opposed: no evidence
    assert [f.key for f in fused] == ["b", "c", "a", "d"]
    assert {f.key: f.score for f in fused} == pytest.approx(expected, rel=1e-12)
    assert {f.key: f.ranks for f in fused} == {"a": (1, None), "b": (2, 1), "c": (None, 2), "d": (None, 3)}
    assert weighted_fuse(keyword, vector) == weighted_fuse(keyword, vector, keyword_weight=KEYWORD_WEIGHT)


def test_edges_and_errors() -> None:
    assert weighted_fuse([], []) == []
    only = weighted_fuse([("x", 2.0), ("y", 1.0)], [])
    assert [(f.key, f.ranks) for f in only] == [("x", (1, None)), ("y", (2, None))]
    # Equal scores: the better best rank first, then the keyword list's item.
    tied = weighted_fuse([("k", 1.0)], [("v", 1.0)], keyword_weight=0.5)
    assert [f.key for f in tied] == ["k", "v"] and tied[0].score == tied[1].score
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError):
            weighted_fuse([], [], keyword_weight=bad)


scored = st.lists(st.tuples(st.integers(0, 12), st.floats(0.01, 100.0)), max_size=10, unique_by=lambda t: t[0])


@given(keyword=scored, vector=scored, weight=st.floats(0.0, 1.0), scale=st.floats(0.1, 50.0))
def test_matches_brute_force_and_ignores_each_lists_scale(
    keyword: list[tuple[int, float]], vector: list[tuple[int, float]], weight: float, scale: float
) -> None:
    keyword.sort(key=lambda t: -t[1])
    vector.sort(key=lambda t: -t[1])
    fused = weighted_fuse(keyword, vector, keyword_weight=weight)
    best_k = max((s for _, s in keyword), default=1.0)
    best_v = max((s for _, s in vector), default=1.0)
    reference = {key: 0.0 for key, _ in [*keyword, *vector]}
    for key, s in keyword:
        reference[key] += weight * s / best_k
    for key, s in vector:
        reference[key] += (1 - weight) * s / best_v
    assert {f.key: f.score for f in fused} == pytest.approx(reference, rel=1e-9, abs=1e-12)
    scores = [f.score for f in fused]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 + 1e-12 for s in scores)
    rescaled = weighted_fuse([(k, s * scale) for k, s in keyword], vector, keyword_weight=weight)
    assert [f.score for f in rescaled] == pytest.approx(scores, rel=1e-9, abs=1e-12)
