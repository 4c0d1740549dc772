"""Where an execution stands (the reference APIs' statuses, snake_case)."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from domain.scheduling import NodeStatus


class ExecutionStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


TERMINAL = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED, ExecutionStatus.TIMED_OUT}
)
WORKING = frozenset({NodeStatus.SCHEDULED, NodeStatus.RUNNING})


class CheckpointRef(msgspec.Struct, frozen=True, array_like=True):
    """Where a checkpoint sits in its execution's stream. Encoded as an array, as the
    named tuple it replaces was, so stored snapshots read the same; a Struct decodes
    several times faster, which long runs with many checkpoints feel in every cold load."""

    node_id: str | None
    label: str | None
    version: int
    type: str = "automatic"  # see execution_events.CheckpointType
