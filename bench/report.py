"""The bench's output: the goals table, the table of every row, and the JSON file.

The JSON holds every figure at the top level under its key (a number, or null when the
phase that measures it failed or did not run), then the goals, the rows as printed, and
each phase's error and duration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench import goals
from bench.phase import PhaseResult, figures


def lines(results: list[PhaseResult], *, mode: str, total_s: float) -> list[str]:
    out = [f"\nQuipu bench ({mode}; total {total_s:.0f} s)\n", "Goals (peers and baselines measured in this run):\n"]
    out += goals.table(goals.evaluate(figures(results)))
    out += ["", "| figure | Quipu | baseline or peer | ratio / goal |", "|---|---|---|---|"]
    for r in results:
        out += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in r.outcome.rows]
    notes = [n for r in results for n in r.outcome.notes]
    failed = [r for r in results if r.error]
    if notes or failed:
        out.append("")
    out += notes
    out += [f"Phase failed: {r.phase.name}: {r.error}" for r in failed]
    return out


def document(results: list[PhaseResult], *, mode: str, total_s: float, keys: Iterable[str] = ()) -> dict[str, Any]:
    """``keys``: figures to write even when no phase measured them (null)."""
    doc: dict[str, Any] = dict.fromkeys(sorted(keys)) | figures(results)
    doc |= {
        "mode": mode,
        "total_seconds": round(total_s, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "goals": [g.__dict__ for g in goals.evaluate(figures(results))],
        "rows": [
            {"phase": r.phase.name, "figure": f, "quipu": q, "baseline": b, "ratio_or_goal": g}
            for r in results
            for f, q, b, g in r.outcome.rows
        ],
        "phases": [{"name": r.phase.name, "seconds": round(r.seconds, 1), "error": r.error} for r in results],
    }
    return doc


def write(path: Path, results: list[PhaseResult], *, mode: str, total_s: float, keys: Iterable[str] = ()) -> None:
    doc = document(results, mode=mode, total_s=total_s, keys=keys)
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
