"""Every projection Quipu runs, by name."""

from __future__ import annotations

from projections.agent_types import AgentTypesProjection
from projections.base import Projection
from projections.branches import BranchesProjection
from projections.callbacks import CallbacksProjection
from projections.checkpoints import CheckpointsProjection
from projections.coordination import CoordinationProjection
from projections.execution_metrics import MetricsProjection
from projections.executions import ExecutionsProjection
from projections.knowledge import KnowledgeProjection
from projections.memory_search import MemorySearchProjection
from projections.memory_sessions import MemorySessionsProjection
from projections.messages import MessagesProjection
from projections.summarization import SummarizationProjection
from projections.tenants import TenantsProjection
from projections.timeline import TimelineProjection
from projections.timers import TimersProjection
from projections.workflows import WorkflowsProjection

PROJECTIONS: dict[str, type[Projection]] = {
    p.name: p
    for p in (
        WorkflowsProjection,
        ExecutionsProjection,
        CheckpointsProjection,
        TimersProjection,
        TimelineProjection,
        MetricsProjection,
        BranchesProjection,
        MemorySessionsProjection,
        KnowledgeProjection,
        MemorySearchProjection,
        TenantsProjection,
        SummarizationProjection,
        CoordinationProjection,
        MessagesProjection,
        CallbacksProjection,
        AgentTypesProjection,
    )
}


def projection(name: str) -> Projection:
    try:
        return PROJECTIONS[name]()
    except KeyError:
        raise KeyError(f"unknown projection '{name}'; known: {', '.join(sorted(PROJECTIONS))}") from None
