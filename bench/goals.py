"""The performance goals against peers and baselines: one row per goal, computed from the
figures the phases wrote (so it is right whichever phases ran or failed).

Each row: the goal, Quipu's figure, the peer's or baseline's, the ratio, and OK / MISS
(``n/a`` when a figure it needs is missing, e.g. because its phase failed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Figures = dict[str, float | None]


@dataclass(frozen=True)
class GoalRow:
    figure: str
    quipu: str
    peer: str
    ratio: str
    goal: str
    status: str  # "OK", "MISS" or "n/a"


def _n(v: float, unit: str = "") -> str:
    s = f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.3f}"
    return f"{s} {unit}".strip()


def _status(ok: bool) -> str:
    return "OK" if ok else "MISS"


def _na(figure: str, goal: str, missing: list[str]) -> GoalRow:
    return GoalRow(figure, "n/a", "n/a", "-", goal, "n/a (missing: " + ", ".join(missing) + ")")


def _need(f: Figures, *keys: str) -> list[str]:
    return [k for k in keys if f.get(k) is None]


def _ratio_goal(
    f: Figures, figure: str, goal: str, q: str, p: str, unit: str, ok: Callable[[float], bool], peer_label: str = ""
) -> GoalRow:
    if missing := _need(f, q, p):
        return _na(figure, goal, missing)
    qv, pv = f[q], f[p]
    assert qv is not None and pv is not None
    ratio = qv / pv if pv else float("inf")
    return GoalRow(figure, _n(qv, unit), f"{peer_label}{_n(pv, unit)}", f"{ratio:.2f}x", goal, _status(ok(ratio)))


def evaluate(f: Figures) -> list[GoalRow]:
    """Every goal row, in the order of the goals table."""
    rows = [
        _ratio_goal(f, "runs/s through NATS workers (ten-node no-op workflow)", ">= 1.0x LangGraph in-process",
                    "runs_per_s_nats", "runs_per_s_langgraph", "runs/s", lambda r: r >= 1.0,
                    "LangGraph in-process, 1 thread: "),
        _ratio_goal(f, "runs/s driven directly (no NATS), 1 thread", ">= 1.5x LangGraph",
                    "runs_per_s_direct", "runs_per_s_langgraph_1t", "runs/s", lambda r: r >= 1.5,
                    "LangGraph, 1 thread: "),
        _ratio_goal(f, "runs/s driven directly (no NATS), 6 threads", ">= 1.5x LangGraph",
                    "runs_per_s_direct_6t", "runs_per_s_langgraph_6t", "runs/s", lambda r: r >= 1.5,
                    "LangGraph, 6 threads: "),
    ]  # fmt: skip
    goal = "p50 <= 5 ms, p99 <= 20 ms"
    if missing := _need(f, "handoff_p50_ms", "handoff_p99_ms"):
        rows.append(_na("task handoff, node completed -> next task at the worker", goal, missing))
    else:
        p50, p99 = f["handoff_p50_ms"], f["handoff_p99_ms"]
        assert p50 is not None and p99 is not None
        j50, j99 = f.get("jetstream_p50_ms"), f.get("jetstream_p99_ms")
        peer = "-" if j50 is None or j99 is None else f"raw JetStream: {_n(j50)} / {_n(j99, 'ms')}"
        ratio = "-" if not j50 else f"{p50 / j50:.0f}x"
        rows.append(
            GoalRow("task handoff p50 / p99, node completed -> next task at the worker",
                    f"{_n(p50)} / {_n(p99, 'ms')}", peer, ratio, goal, _status(p50 <= 5 and p99 <= 20))
        )  # fmt: skip
    steps = "10,000" if f.get("history_steps") is None else f"{f['history_steps']:,.0f}"
    rows += [
        _ratio_goal(f, f"state as of an event of a {steps}-step history, p50", "<= 1.0x LangGraph get_state",
                    "state_as_of_p50_ms_10k", "langgraph_get_state_p50_ms_10k", "ms", lambda r: r <= 1.0,
                    "LangGraph get_state: "),
        _ratio_goal(f, "bytes stored per ten-node run (tables + indexes)", "<= 1.2x LangGraph",
                    "bytes_per_run", "langgraph_bytes_per_run", "bytes", lambda r: r <= 1.2, "LangGraph: "),
        _ratio_goal(f, "append, 1 writer", ">= 50% of raw INSERT+COMMIT",
                    "append_eps_1", "append_raw_eps_1", "/s", lambda r: r >= 0.5, "raw INSERT+COMMIT: "),
        _ratio_goal(f, "append, 8 writers", ">= 80% of raw INSERT+COMMIT",
                    "append_eps_8", "append_raw_eps_8", "/s", lambda r: r >= 0.8, "raw INSERT+COMMIT: "),
    ]  # fmt: skip
    goal = "<= 10 ms (at 1M events)"
    if missing := _need(f, "walk_p99_ms", "walk_events"):
        rows.append(_na("ancestors and descendants p99", goal, missing))
    else:
        ms, events = f["walk_p99_ms"], f["walk_events"]
        assert ms is not None and events is not None
        scale = "" if events >= 1_000_000 else f" (measured at {events:,.0f} events)"
        rows.append(GoalRow(f"ancestors and descendants p99{scale}", _n(ms, "ms"), "-", "-", goal, _status(ms <= 10)))
    rows += _search(f)
    return rows


def _search(f: Figures) -> list[GoalRow]:
    rows = [
        _ratio_goal(f, "keyword search, Cranfield nDCG@10", ">= 1.0x stemmed BM25",
                    "ndcg10_keyword", "ndcg10_bm25", "", lambda r: r >= 1.0, "stemmed BM25: "),
    ]  # fmt: skip
    figure, goal = "hybrid search, Cranfield nDCG@10", ">= 1.15x stemmed BM25 and >= the better of its two halves"
    if missing := _need(f, "ndcg10_hybrid", "ndcg10_bm25", "ndcg10_keyword", "ndcg10_vector"):
        rows.append(_na(figure, goal, missing))
    else:
        h, b, k, v = (f[key] for key in ("ndcg10_hybrid", "ndcg10_bm25", "ndcg10_keyword", "ndcg10_vector"))
        assert h is not None and b is not None and k is not None and v is not None
        ok = h >= 1.15 * b and h >= max(k, v)
        rows.append(
            GoalRow(figure, _n(h), f"stemmed BM25: {_n(b)}; keyword {_n(k)}, vector {_n(v)}", f"{h / b:.2f}x", goal,
                    _status(ok))
        )  # fmt: skip
    modes = ("search_p99_ms_keyword", "search_p99_ms_vector", "search_p99_ms_hybrid")
    goal = "<= 50 ms (at 100,000 notes)"
    if missing := _need(f, *modes, "search_notes"):
        rows.append(_na("search p99, every mode", goal, missing))
    else:
        k, v, h, notes = (f[key] for key in (*modes, "search_notes"))
        assert k is not None and v is not None and h is not None and notes is not None
        scale = "" if notes >= 100_000 else f", measured at {notes:,.0f} notes"
        rows.append(
            GoalRow(f"search p99 keyword / vector / hybrid{scale}", f"{_n(k)} / {_n(v)} / {_n(h, 'ms')}", "-", "-",
                    goal, _status(max(k, v, h) <= 50))
        )  # fmt: skip
    scale = ("search_scale_p99_ms_keyword", "search_scale_p99_ms_vector", "search_scale_p99_ms_hybrid")
    goal = "measured and reported (at 1,000,000 notes)"
    if missing := _need(f, "search_scale_notes", *scale):
        rows.append(_na("search latency p99 at 1M notes, keyword / vector / hybrid", goal, missing))
    else:
        k, v, h, notes = (f[key] for key in (*scale, "search_scale_notes"))
        assert k is not None and v is not None and h is not None and notes is not None
        rows.append(
            GoalRow(f"search latency p99 at {notes:,.0f} notes, keyword / vector / hybrid (bulk-loaded, engine)",
                    f"{_n(k)} / {_n(v)} / {_n(h, 'ms')}", "-", "-", goal,
                    "OK" if notes >= 1_000_000 else f"MISS (measured at {notes:,.0f} notes)")
        )  # fmt: skip
    figure, goal = "ingestion with embedding", ">= 300 notes/s"
    rate = f.get("ingest_notes_per_s")
    if rate is None:
        rows.append(_na(figure, goal, ["ingest_notes_per_s"]))
    else:
        rows.append(GoalRow(figure, _n(rate, "notes/s"), "-", f"{rate / 300:.2f}x of the goal", goal,
                            _status(rate >= 300)))  # fmt: skip
    return rows


def table(rows: list[GoalRow]) -> list[str]:
    lines = ["| goal figure | Quipu | peer or baseline | ratio | goal | status |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.figure} | {r.quipu} | {r.peer} | {r.ratio} | {r.goal} | {r.status} |" for r in rows]
    return lines
