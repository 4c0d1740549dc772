"""A real bench phase on a real Postgres, next to one that fails: the one still measures and
writes its figures, the other reports its error in its rows, and the JSON holds every key."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report
from bench.__main__ import PHASES, all_keys
from bench.phase import Context, run_phases

from quipu.wiring import build_store


def test_append_phase_measures_while_a_failing_phase_reports_its_error(database_url: str, tmp_path: Path) -> None:
    append = next(p for p in PHASES if p.name == "append throughput")
    search = next(p for p in PHASES if p.name.startswith("memory search"))
    store = build_store(database_url, pool_size=8)
    try:
        # No search sizes: the search phase fails at once, as a phase with a missing input would.
        ctx = Context(database_url, "nats://127.0.0.1:9", sizes={"append_n": 16}, store=store)
        results = run_phases([search, append], ctx)
    finally:
        store.close()
    failed, measured = results
    assert failed.error == "KeyError: 'search_notes'"
    assert failed.outcome.rows[0][1] == "error: KeyError: 'search_notes'"
    assert measured.error is None
    assert [row[0].split(" (")[0] for row in measured.outcome.rows] == [
        "Append throughput, 1 thread",
        "Append throughput, 8 threads",
    ]
    path = tmp_path / "bench.json"
    report.write(path, results, mode="quick", total_s=1.0, keys=all_keys())
    doc = json.loads(path.read_text())
    assert set(doc) >= all_keys()
    assert doc["append_ratio_1"] > 0 and doc["append_ratio_8"] > 0
    assert doc["ndcg10_keyword"] is None and doc["ingest_notes_per_s"] is None
    printed = "\n".join(report.lines(results, mode="quick", total_s=1.0))
    assert "error: KeyError: 'search_notes'" in printed and "| append, 1 writer |" in printed
