"""Imports every module that declares event kinds, so the kind registry is complete
wherever events are decoded (relay, projectors, replays) — not only where an aggregate
happens to be imported."""

from __future__ import annotations

from domain import (
    access,
    agent,
    artifact,
    callback,
    delegation,
    delivery,
    entity_edge,
    execution,
    handoff,
    lock,
    message,
    note,
    scope,
    summarization_policy,
    summarization_request,
    system,
    telemetry,
    tenant,
    trajectory,
    turn,
    workflow,
)

AGGREGATE_MODULES = (
    access,
    agent,
    artifact,
    callback,
    delegation,
    delivery,
    entity_edge,
    execution,
    handoff,
    lock,
    message,
    note,
    scope,
    summarization_policy,
    summarization_request,
    system,
    telemetry,
    tenant,
    trajectory,
    turn,
    workflow,
)
