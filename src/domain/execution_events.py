"""The events of an execution's stream (kinds 0xB001-0xB0FF).

Each is past tense and carries only what cannot be derived from earlier events of the
same stream; deadlines are recorded (not recomputed) so that durable timers replay
exactly as they were decided.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast, get_args
from uuid import UUID

from domain.events import DomainEvent, event_kind
from domain.forking import CarriedNode, ForkOrigin
from domain.workflow_graph import WorkflowDefinition


@event_kind("execution.started", 0xB001)
class ExecutionStarted(DomainEvent, frozen=True, kw_only=True):
    workflow_id: UUID
    workflow_version: int
    definition: WorkflowDefinition
    input: dict[str, Any]
    request_hash: str | None = None
    deadline: datetime | None = None  # the whole run times out at this moment
    fork: ForkOrigin | None = None  # set when this run is a branch of another
    carried: list[CarriedNode] = []  # a branch's nodes already finished when it starts


@event_kind("execution.node_scheduled", 0xB002)
class NodeScheduled(DomainEvent, frozen=True, kw_only=True):
    """A node became ready. For task nodes this is the task handed to workers; for an
    approval node it is the approval request (its event id is the approval id)."""

    node_id: str
    attempt: int = 1
    node_type: str = "task"
    agent_type: str | None = None
    deadline: datetime | None = None  # this attempt times out at this moment
    callback_id: str | None = None  # set when a registered callback serves the node, not a worker


@event_kind("execution.node_completed", 0xB003)
class NodeCompleted(DomainEvent, frozen=True, kw_only=True):
    node_id: str
    output: dict[str, Any]
    attempt: int = 1


@event_kind("execution.node_failed", 0xB004)
class NodeFailed(DomainEvent, frozen=True, kw_only=True):
    """An attempt failed. ``retry_at`` is set when another attempt will follow."""

    node_id: str
    error: str
    attempt: int = 1
    timed_out: bool = False
    retry_at: datetime | None = None


@event_kind("execution.node_skipped", 0xB005)
class NodeSkipped(DomainEvent, frozen=True, kw_only=True):
    node_id: str


@event_kind("execution.paused", 0xB006)
class ExecutionPaused(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


HITP_RESPONSE_KEY = "hitp_response"
"""Where a resume's ``user_response`` and ``additional_data`` are kept in the state."""


@event_kind("execution.resumed", 0xB007)
class ExecutionResumed(DomainEvent, frozen=True, kw_only=True):
    """The run continues. A person's answer given with the resume (the Analemma OS
    reference's HITP response) is recorded here and kept in the state under
    ``HITP_RESPONSE_KEY``; ``approval_id`` is set when the resume answered a waiting approval."""

    user_response: str | None = None
    additional_data: dict[str, Any] = {}
    approval_id: UUID | None = None
    # Set when a failed run was resumed: the latest recoverable checkpoint it continues from,
    # and the run's deadline, armed again (the timers of a failed run were dropped).
    from_checkpoint_id: UUID | None = None
    deadline: datetime | None = None


@event_kind("execution.cancelled", 0xB008)
class ExecutionCancelled(DomainEvent, frozen=True, kw_only=True):
    reason: str | None = None


@event_kind("execution.succeeded", 0xB009)
class ExecutionSucceeded(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("execution.failed", 0xB00A)
class ExecutionFailed(DomainEvent, frozen=True, kw_only=True):
    node_id: str | None
    error: str


@event_kind("execution.node_started", 0xB00B)
class NodeStarted(DomainEvent, frozen=True, kw_only=True):
    """A worker picked the task up (its first heartbeat)."""

    node_id: str
    attempt: int = 1
    worker: str | None = None


@event_kind("execution.timed_out", 0xB00C)
class ExecutionTimedOut(DomainEvent, frozen=True, kw_only=True):
    pass


@event_kind("execution.decision_made", 0xB00D)
class DecisionMade(DomainEvent, frozen=True, kw_only=True):
    """An outside service chose the branches of a decision node (``outcome``: the name it
    gave, when it chose by name rather than by targets)."""

    node_id: str
    targets: list[str]
    reason: str | None = None
    outcome: str | None = None


@event_kind("execution.approval_answered", 0xB00E)
class ApprovalAnswered(DomainEvent, frozen=True, kw_only=True):
    """Who answered (the actor), what, and the hash of the state they were shown."""

    node_id: str
    approval_id: UUID
    approved: bool
    feedback: str = ""
    state_changes: dict[str, Any] = {}
    state_hash: str


CheckpointType = Literal["automatic", "manual", "failure", "paused"]


@event_kind("execution.checkpoint_taken", 0xB00F)
class CheckpointTaken(DomainEvent, frozen=True, kw_only=True):
    """The state at this point: after a node that may change it (``automatic``), when a node
    failed for good (``failure``, ``node_id`` names it), when the run paused (``paused``) or on
    demand (``manual``). ``is_recoverable``: the run can continue from it (it was taken before
    the run succeeded). Events recorded before ``type`` existed carry None: read it with
    ``checkpoint_type``."""

    state: dict[str, Any]
    state_hash: str
    node_id: str | None = None
    label: str | None = None
    type: CheckpointType | None = None
    is_recoverable: bool = True


def checkpoint_type(recorded: str | None, node_id: str | None) -> CheckpointType:
    """The type of a checkpoint; one recorded without a type was taken after a node
    (``automatic``) or on demand (``manual``), the only two kinds there were then."""
    if recorded in get_args(CheckpointType):
        return cast(CheckpointType, recorded)
    return "automatic" if node_id is not None else "manual"


@event_kind("execution.deleted", 0xB020)
class ExecutionDeleted(DomainEvent, frozen=True, kw_only=True):
    """A tombstone for a finished run. Reads of the run as it is now (get, lists, checkpoints,
    steering) answer 404 from then on; its events stay in the log, so the event DAG, replay
    and the state as of a past point still show it (docs/architecture.md, API map)."""

    reason: str | None = None
