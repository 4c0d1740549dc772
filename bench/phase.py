"""Phases of the bench, each isolated: one that fails reports its error in its own row and
its figures as null, and the others still run and print.

A phase is ``def phase(ctx: Context) -> Outcome``, registered in ``bench.__main__.PHASES``
with the JSON figure keys it promises (so the key set is known without running anything).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import log

Row = tuple[str, str, str, str]  # figure, Quipu, baseline or peer, ratio / goal


@dataclass
class Context:
    """What every phase gets: the servers, the sizes, and what earlier phases left for later ones."""

    database_url: str
    nats_url: Any  # bus.runtime.NatsEndpoint | str
    nats_authority: Any = None  # bus.nats_auth.NatsAuthority | None (embedded NATS only)
    quick: bool = False
    sizes: dict[str, Any] = field(default_factory=dict)
    store: Any = None  # commands.store.EventStore, shared by the phases that append directly
    shared: dict[str, Any] = field(default_factory=dict)  # e.g. the time-travel execution, for the peer phase
    between: Callable[[], None] | None = None  # settles the database between phases


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    figures: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # printed under the table


@dataclass(frozen=True)
class Phase:
    name: str
    run: Callable[[Context], Outcome]
    keys: tuple[str, ...] = ()  # the JSON figures this phase promises (null when it fails)


@dataclass
class PhaseResult:
    phase: Phase
    outcome: Outcome
    seconds: float
    error: str | None = None


def error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().rstrip(":")
    return " ".join(text.split())[:300]


def run_phase(phase: Phase, ctx: Context) -> PhaseResult:
    """Runs one phase; an exception becomes an error row and null figures, never a crash."""
    t0 = time.perf_counter()
    try:
        outcome = phase.run(ctx)
    except Exception as error:
        log(f"  {phase.name} FAILED: {error_text(error)}")
        log("".join(traceback.format_exception(error)).rstrip())
        outcome = Outcome(rows=[(f"{phase.name} (phase failed)", f"error: {error_text(error)}", "-", "-")])
        result = PhaseResult(phase, outcome, time.perf_counter() - t0, error_text(error))
    else:
        result = PhaseResult(phase, outcome, time.perf_counter() - t0)
    for key in phase.keys:
        result.outcome.figures.setdefault(key, None)
    return result


def run_phases(phases: list[Phase], ctx: Context) -> list[PhaseResult]:
    """Every phase in order. An interrupt (Ctrl-C, or SIGTERM as ``python -m bench`` maps it)
    stops the bench there: that phase and the ones after it report it, the earlier ones keep
    their figures, and the caller still prints and writes what was measured."""
    results: list[PhaseResult] = []
    for i, phase in enumerate(phases, 1):
        log(f"{i}/{len(phases)} {phase.name}")
        t0 = time.perf_counter()
        try:
            results.append(run_phase(phase, ctx))
        except KeyboardInterrupt:
            log(f"  interrupted during {phase.name}: the phases after it do not run")
            for rest, why in [(phase, "interrupted"), *((p, "not run (interrupted before it)") for p in phases[i:])]:
                outcome = Outcome(rows=[(f"{rest.name} ({why})", f"error: {why}", "-", "-")])
                outcome.figures = dict.fromkeys(rest.keys)
                results.append(PhaseResult(rest, outcome, time.perf_counter() - t0 if rest is phase else 0.0, why))
            return results
        for row in results[-1].outcome.rows:
            log("  | " + " | ".join(row) + " |")
        if ctx.between is not None and i < len(phases):
            try:
                ctx.between()
            except Exception as error:  # settling is a courtesy to the next phase, not a figure
                log(f"  settling the database after {phase.name} failed: {error_text(error)}")
    return results


def figures(results: list[PhaseResult]) -> dict[str, float | None]:
    """Every phase's figures in one map; a non-finite number becomes null (JSON has no NaN)."""
    out: dict[str, float | None] = {}
    for r in results:
        for key, value in r.outcome.figures.items():
            out[key] = None if value is None or value != value or value in (float("inf"), float("-inf")) else value
    return out
