"""Shared helpers: a small workflow, progress output, percentiles."""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from typing import Any

from domain.aggregate import CommandContext
from domain.workflow import Workflow
from domain.workflow_graph import Edge, Node, WorkflowDefinition

DEFINITION = WorkflowDefinition(
    nodes=[Node(id="start", type="start"), Node(id="work", agent_type="worker"), Node(id="end", type="end")],
    edges=[Edge(source="start", target="work"), Edge(source="work", target="end")],
)


def new_workflow(tenant: str, caused_by: tuple[uuid.UUID, ...] = (), i: int = 0) -> Workflow:
    ctx = CommandContext(tenant, "bench", caused_by=caused_by)
    return Workflow.create(
        ctx,
        workflow_id=uuid.uuid4(),
        name=f"bench workflow {i}",
        description="a small benchmark workflow",
        definition=DEFINITION,
        metadata={"bench": True},
    )


class Progress:
    """A single, rewritten stderr line."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.t0, self._last = label, total, time.perf_counter(), 0.0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self._last < 1.0 and done < self.total:
            return
        self._last = now
        rate = done / max(now - self.t0, 1e-9)
        sys.stderr.write(f"\r  {self.label}: {done}/{self.total} ({rate:,.0f}/s)   ")
        sys.stderr.flush()

    def done(self) -> None:
        self.update(self.total)
        sys.stderr.write("\n")
        sys.stderr.flush()


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    qs = statistics.quantiles(values, n=1000, method="inclusive")
    return qs[min(int(p * 10) - 1, len(qs) - 1)] if p < 100 else max(values)


def fmt(v: Any, unit: str = "") -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        s = f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"
    else:
        s = str(v)
    return f"{s} {unit}".strip()
