"""The history of an execution's human-in-the-loop approvals."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec

ApprovalStatus = Literal["pending", "approved", "rejected", "timed_out"]


class ApprovalRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One request and its answer. ``approval_id`` is the request event's id; the state
    hash is that of the state the approver was shown when the request was made."""

    approval_id: UUID
    node_id: str
    prompt: str | None
    requested_at: datetime
    timeout_seconds: float | None
    state_hash: str
    status: ApprovalStatus = "pending"
    answered_by: str | None = None
    answered_at: datetime | None = None
    feedback: str | None = None
    state_changes: dict[str, Any] = {}
