"""Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009), pure.

Each ranked list gives an item ``1 / (k + rank)`` (ranks start at 1) and an item's fused score is
the sum over the lists it appears in. RRF needs no score calibration between keyword scores
(BM25) and cosine similarities, which live on unrelated scales; k = 60 is the paper's
value and damps the influence of the very first ranks.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_K = 60


@dataclass(frozen=True)
class Fused(Generic[K]):
    key: K
    score: float
    #: The item's 1-based rank in each input list, ``None`` where it is absent.
    ranks: tuple[int | None, ...]


def fuse(rankings: Sequence[Sequence[K]], *, k: int = DEFAULT_K) -> list[Fused[K]]:
    """Fuse best-first lists into one best-first list.

    Ties (equal fused scores) are broken deterministically: the item with the better best rank
    first, then the one whose best rank comes from the earlier list, then first appearance
    (lists in order, each best-first). A key repeated within one list counts at its first rank.
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    ranks: dict[K, list[int | None]] = {}
    for position, ranking in enumerate(rankings):
        for rank, key in enumerate(ranking, start=1):
            slots = ranks.setdefault(key, [None] * len(rankings))
            if slots[position] is None:
                slots[position] = rank
    fused: list[tuple[tuple[float, int, int, int], Fused[K]]] = []
    for appearance, (key, slots) in enumerate(ranks.items()):
        # Summed in list order, so two items with mirrored ranks get bit-identical scores.
        score = 0.0
        for r in slots:
            if r is not None:
                score += 1.0 / (k + r)
        best = min(r for r in slots if r is not None)
        best_list = slots.index(best)
        fused.append(((-score, best, best_list, appearance), Fused(key, score, tuple(slots))))
    fused.sort(key=lambda item: item[0])
    return [item for _, item in fused]
