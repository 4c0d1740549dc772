"""``python -m bench [--quick] [--json FILE]``: start Postgres + NATS, run every phase (each
isolated: a failing one reports its error in its own rows), print the goals table and one
markdown table of every row, and write every figure to FILE (default bench-results.json)."""

from __future__ import annotations

import argparse
import logging
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg
import structlog

from bench import report
from bench.common import log
from bench.core_phases import append_phase, dag_phase, lag_phase, locks_phase, time_travel_phase
from bench.explorer import phase as explorer_phase
from bench.infra import infra
from bench.nats_failover import nats_failover_phase
from bench.orchestration_phase import orchestration_phase
from bench.peers import peer_phase
from bench.phase import Context, Outcome, Phase, PhaseResult, error_text, run_phases
from bench.search_phase import bm25_phase, memory_search_phase, search_scale_phase
from quipu.tuning import tune_gc
from quipu.wiring import build_store

ORCHESTRATION_KEYS = ("runs_per_s_nats", "runs_per_s_langgraph", "handoff_p50_ms", "handoff_p99_ms")
PEER_KEYS = (
    "runs_per_s_direct",
    "runs_per_s_langgraph_1t",
    "runs_per_s_direct_6t",
    "runs_per_s_langgraph_6t",
    "state_as_of_p50_ms_10k",
    "langgraph_get_state_p50_ms_10k",
    "bytes_per_run",
    "langgraph_bytes_per_run",
)
SEARCH_KEYS = (
    "ndcg10_keyword",
    "ndcg10_vector",
    "ndcg10_hybrid",
    "search_p99_ms_keyword",
    "search_p99_ms_vector",
    "search_p99_ms_hybrid",
    "search_notes",
    "ingest_notes_per_s",
)
# In this order (the longest last: a run stopped early keeps the most rows); each with the
# JSON figures it promises (null when it fails).
PHASES = [
    Phase("append throughput", append_phase, ("append_ratio_1", "append_ratio_8")),
    Phase("append -> read-model lag", lag_phase, ("lag_p50_ms", "lag_p99_ms")),
    Phase("DAG walks", dag_phase, ("walk_p99_ms", "walk_events")),
    Phase("orchestration through NATS, alternating with LangGraph", orchestration_phase, ORCHESTRATION_KEYS),
    Phase("time travel", time_travel_phase, ("state_as_of_p50_ms",)),
    Phase("Quipu driven directly vs LangGraph: runs/s, bytes, state as of", peer_phase, PEER_KEYS),
    Phase("stemmed BM25 baseline (Cranfield)", bm25_phase, ("ndcg10_bm25",)),
    Phase("lock round trips", locks_phase, ("lock_round_trips_per_s",)),
    Phase(
        "NATS leader loss on a 3-node cluster",
        nats_failover_phase,
        ("nats_leader_loss_lag_pause_ms", "nats_leader_loss_lag_before_ms", "nats_leader_election_ms"),
    ),
    Phase(
        "web explorer in Chromium: time to an interactive graph",
        explorer_phase,
        ("ui_graph_500_tti_ms", "ui_event_5000_ancestors_tti_ms"),
    ),
    Phase(
        "search at scale (notes bulk-loaded into a read model)",
        search_scale_phase,
        ("search_scale_notes", *(f"search_scale_p99_ms_{m}" for m in ("keyword", "vector", "hybrid"))),
    ),
    Phase("memory search through the API (Cranfield, then N notes)", memory_search_phase, SEARCH_KEYS),
]
# The figures `--json` always holds (a number, or null when a phase failed).
REQUIRED_KEYS = frozenset(
    {
        *("runs_per_s_nats", "runs_per_s_direct", "runs_per_s_langgraph", "handoff_p50_ms", "handoff_p99_ms"),
        *("state_as_of_p50_ms_10k", "langgraph_get_state_p50_ms_10k", "bytes_per_run", "langgraph_bytes_per_run"),
        *("append_ratio_1", "append_ratio_8", "walk_p99_ms", "walk_events"),
        *("ndcg10_keyword", "ndcg10_vector", "ndcg10_hybrid", "ndcg10_bm25", "search_p99_ms_hybrid", "search_notes"),
        "ingest_notes_per_s",
    }
)
QUICK: dict[str, Any] = {
    "append_n": 400, "lag_rate": 500.0, "lag_s": 4.0, "dag_n": 10_000, "samples": 100, "runs": 40,
    "latency_runs": 16, "tt_events": 10_000, "tt_repeats": 5, "search_queries": 100, "search_notes": 5_000,
    "lock_trips": 300, "peer_runs": 40, "peer_rounds": 2, "peer_repeats": 20,
    "search_scale_notes": 50_000, "search_scale_pool": 2_000,
}  # fmt: skip
FULL: dict[str, Any] = {
    "append_n": 3000, "lag_rate": 500.0, "lag_s": 10.0, "dag_n": 1_000_000, "samples": 200, "runs": 200,
    "latency_runs": 60, "tt_events": 10_000, "tt_repeats": 15, "search_queries": 225, "search_notes": 100_000,
    "lock_trips": 2000, "peer_runs": 200, "peer_rounds": 4, "peer_repeats": 50,
    "search_scale_notes": 1_000_000, "search_scale_pool": 5_000,
}  # fmt: skip


def quiesce(database_url: str) -> None:
    """Start each phase on a settled database: flush the previous phase's dirty pages now,
    so its checkpoint does not stall the next phase's commits."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        conn.execute("VACUUM ANALYZE")


def measure(phases: list[Phase], quick: bool, sizes: dict[str, Any]) -> list[PhaseResult]:
    """Every phase on fresh servers; if the servers do not start, every phase reports that."""
    try:
        with infra() as env:
            store = build_store(env.database_url, pool_size=8)
            try:
                ctx = Context(env.database_url, env.nats_url, env.nats_authority, quick, sizes, store)
                ctx.between = lambda: quiesce(env.database_url)
                return run_phases(phases, ctx)
            finally:
                store.close()
    except Exception as error:
        log(f"the bench's servers failed: {error_text(error)}")
        failed = Outcome(rows=[("(servers)", f"error: {error_text(error)}", "-", "-")])
        return [PhaseResult(p, Outcome(rows=list(failed.rows), figures=dict.fromkeys(p.keys)), 0.0,
                            error_text(error)) for p in phases]  # fmt: skip


def all_keys() -> frozenset[str]:
    return REQUIRED_KEYS | {key for phase in PHASES for key in phase.keys}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about ten minutes)")
    parser.add_argument(
        "--search-notes",
        type=int,
        default=0,
        metavar="N",
        help="notes for the memory search latency phase (default 100,000; 5,000 with --quick)",
    )
    parser.add_argument(
        "--json", type=Path, default=Path("bench-results.json"), help="every figure as JSON (default %(default)s)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="WORDS",
        help="run only the phases whose name contains WORDS (repeatable); the others' figures are null",
    )
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N", help="override one size")
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    if args.search_notes:
        sizes["search_notes"] = args.search_notes
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in sizes:
            parser.error(f"--size {item}: sizes are {', '.join(sorted(sizes))}")
        sizes[name] = type(sizes[name])(value)
    phases = [p for p in PHASES if not args.only or any(w.lower() in p.name.lower() for w in args.only)]
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.basicConfig(level=logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    # SIGTERM (a CI timeout, `kill`) stops the bench as Ctrl-C does: what was measured is still written.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.perf_counter()
    tune_gc()  # the same process tuning `quipu up` / `quipu api` apply
    results = measure(phases, args.quick, sizes)
    total = time.perf_counter() - started
    mode = "quick" if args.quick else "full"
    print("\n".join(report.lines(results, mode=mode, total_s=total)))
    report.write(args.json, results, mode=mode, total_s=total, keys=all_keys())
    log(f"written to {args.json}")


if __name__ == "__main__":
    main()
