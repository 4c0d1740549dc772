"""The messages between Quipu and workers over NATS (versioned with the subject scheme).

This module is the one definition of these messages: Quipu imports it from here.

A task is published once per node attempt on ``<prefix>.task.<tenant>.<agent_type>``
with ``Nats-Msg-Id`` = the scheduling event's id, so a re-dispatch is deduplicated.
Workers answer with reports on ``<prefix>.report.<tenant>`` (NATS request-reply) or the
equivalent HTTP endpoints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec


class Task(msgspec.Struct, kw_only=True):
    task_id: UUID  # the node_scheduled event: the DAG node this work hangs under
    tenant_id: str
    execution_id: UUID
    workflow_id: UUID
    node_id: str
    node_name: str | None
    agent_type: str
    attempt: int
    input: dict[str, Any]  # the execution state when the node was scheduled
    config: dict[str, Any]
    scheduled_at: datetime
    deadline: datetime | None = None


class HitpRequired(msgspec.Struct, kw_only=True):
    type: Literal["hitp_required"] = "hitp_required"
    tenant_id: str
    execution_id: UUID
    approval_id: UUID
    node_id: str
    prompt: str | None
    context: dict[str, Any]
    state_hash: str
    timeout_seconds: float | None


class Report(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: Literal["heartbeat", "complete", "fail"]
    execution_id: UUID
    node_id: str
    attempt: int | None = None
    output: dict[str, Any] = {}
    error: str | None = None
    worker: str | None = None


class ReportReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    status: int = 200
    detail: str | None = None
    execution_status: str | None = None
    node_status: str | None = None
