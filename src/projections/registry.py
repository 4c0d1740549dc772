"""Every projection Quipu runs, by name."""

from __future__ import annotations

from projections.base import Projection
from projections.executions import ExecutionsProjection
from projections.workflows import WorkflowsProjection

PROJECTIONS: dict[str, type[Projection]] = {p.name: p for p in (WorkflowsProjection, ExecutionsProjection)}


def projection(name: str) -> Projection:
    try:
        return PROJECTIONS[name]()
    except KeyError:
        raise KeyError(f"unknown projection '{name}'; known: {', '.join(sorted(PROJECTIONS))}") from None
