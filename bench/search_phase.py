"""The search phases: memory search through the API (``bench.memory_search``) and, as a
phase of its own so each reports even when the other fails, the stemmed BM25 baseline
(``bench.bm25_baseline``) on every collection the bench scores (Cranfield)."""

from __future__ import annotations

from bench import bm25_baseline, memory_search, search_scale
from bench.common import pct
from bench.phase import Context, Outcome


def memory_search_phase(ctx: Context) -> Outcome:
    notes, queries = int(ctx.sizes["search_notes"]), int(ctx.sizes["search_queries"])
    r = memory_search.measure(ctx.database_url, ctx.nats_url, notes, queries)
    figures: dict[str, float | None] = {f"ndcg10_{mode}": r.scores[mode][0] for mode in memory_search.MODES}
    figures |= {f"recall100_{mode}": r.scores[mode][1] for mode in memory_search.MODES}
    figures |= {f"search_p99_ms_{mode}": pct(r.api_ms[mode], 99) for mode in memory_search.MODES}
    figures |= {f"search_p50_ms_{mode}": pct(r.api_ms[mode], 50) for mode in memory_search.MODES}
    figures |= {
        "search_notes": float(r.synthetic.notes),
        # The larger of the two ingestions: the notes of the latency rows (first post -> indexed).
        "ingest_notes_per_s": r.synthetic.rate,
        "ingest_cranfield_notes_per_s": r.cranfield.rate,
    }
    return Outcome(rows=memory_search.rows(r), figures=figures)


def bm25_phase(ctx: Context) -> Outcome:
    b = bm25_baseline.cranfield()
    row = (
        f"{b.collection} nDCG@10 / recall@100, stemmed BM25 baseline (bm25s defaults, PyStemmer english;"
        f" {b.queries} queries, {b.documents:,} documents, title + text as Quipu's notes hold them, in process)",
        "-",
        f"{b.ndcg10:.3f} / {b.recall100:.3f}",
        "the goals table compares Quipu's modes with it",
    )
    return Outcome(rows=[row], figures={"ndcg10_bm25": b.ndcg10, "recall100_bm25": b.recall100})


def search_scale_phase(ctx: Context) -> Outcome:
    notes, pool = int(ctx.sizes["search_scale_notes"]), int(ctx.sizes["search_scale_pool"])
    try:
        r = search_scale.measure(ctx.database_url, notes, pool, int(ctx.sizes["search_queries"]))
    finally:
        search_scale.drop(ctx.database_url)
    figures: dict[str, float | None] = {"search_scale_notes": float(r.notes), "search_scale_load_s": r.load_s}
    for mode in search_scale.MODES:
        timings = r.ms.get(mode)
        figures[f"search_scale_p50_ms_{mode}"] = pct(timings, 50) if timings else None
        figures[f"search_scale_p99_ms_{mode}"] = pct(timings, 99) if timings else None
    return Outcome(rows=search_scale.rows(r), figures=figures)
