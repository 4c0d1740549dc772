"""Callbacks in the domain: registration rules, where a callback may serve, the delivery's
attempts (backoff, dead after the last, no attempt recorded twice), derived secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.aggregate import CommandContext
from domain.callback import Callback, callback_stream_id
from domain.delivery import AttemptResult, Delivery, DeliveryPolicy, Target, delivery_stream_id, webhook_id
from domain.errors import Conflict
from domain.webhook_secrets import derive_secret, secret_text
from domain.workflow_analysis import problems
from domain.workflow_graph import Node, WorkflowDefinition
from quipu_client.webhooks import sign, verify_webhook

CTX = CommandContext("acme", "test")
POLICY = DeliveryPolicy(max_attempts=3, base_seconds=1.0, cap_seconds=300.0)


def _callback() -> Callback:
    return Callback.register(
        CTX, callback_id="start-task", service_name="orders", environment="prod", url="https://o/s", secret_id="s1"
    )


def test_an_active_id_belongs_to_its_service_until_deregistered() -> None:
    cb = _callback()
    assert cb.id == callback_stream_id("acme", "start-task") != callback_stream_id("beta", "start-task")
    with pytest.raises(Conflict, match="orders"):
        cb.register_again(CTX, service_name="billing", environment="prod", url="https://b/s", secret_id="s2")
    cb.register_again(CTX, service_name="orders", environment="prod", url="https://o2/s", secret_id="s2")
    assert (cb.url, cb.secret_id, cb.version) == ("https://o2/s", "s2", 2)
    cb.deregister(CTX)
    assert not cb.active
    with pytest.raises(Conflict):
        cb.deregister(CTX)
    cb.register_again(CTX, service_name="billing", environment="test", url="https://b/s", secret_id="s3")
    assert cb.active and cb.service_name == "billing"


def _definition(*nodes: Node) -> WorkflowDefinition:
    return WorkflowDefinition(nodes=list(nodes))


def test_callback_nodes_are_checked_against_the_registry_and_their_place() -> None:
    task = Node(id="ship", callback_id="start-task")
    assert problems(_definition(task), callbacks={"start-task"}) == []
    assert [p.code for p in problems(_definition(task), callbacks=set())] == ["UNKNOWN_CALLBACK"]
    assert problems(_definition(task)) == []  # no registry given: placement only
    both = Node(id="ship", callback_id="start-task", agent_type="llm")
    assert [p.code for p in problems(_definition(both), callbacks={"start-task"})] == ["ambiguous"]
    for node in (
        Node(id="ok", type="approval", callback_id="start-task"),
        Node(id="route", type="decision", callback_id="start-task"),
    ):
        assert "placement" in [p.code for p in problems(_definition(node), callbacks={"start-task"}, complete=False)]
    external = Node(id="route", type="decision", callback_id="start-task", config={"external": True})
    assert "placement" not in [p.code for p in problems(_definition(external), callbacks={"start-task"})]


def _target() -> Target:
    return Target(uuid4(), "start-task", uuid4(), "ship", 1, "https://o/s")


def _result(status: int | None, at: datetime | None = None) -> AttemptResult:
    return AttemptResult(at or datetime.now(UTC), 12.5, status, None if status else "timed out")


def test_attempts_back_off_and_the_last_one_makes_the_delivery_dead() -> None:
    target = _target()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    delivery = Delivery.record_first(CTX, target, _result(500, now), POLICY)
    first = delivery.collect_events()[0]
    assert delivery.id == delivery_stream_id(target.scheduling_event_id)
    assert first.parent_ids == (target.scheduling_event_id,)  # caused by the scheduling
    assert delivery.correlation_id == target.execution_id
    assert delivery.retry_at == now + timedelta(milliseconds=12.5) + timedelta(seconds=1)
    with pytest.raises(Conflict):  # attempt 1 again: a second deliverer's record
        delivery.record(CTX, target, 1, _result(500), POLICY)
    delivery.record(CTX, target, 2, _result(None, now), POLICY)
    assert delivery.status == "pending" and delivery.last_error == "timed out"
    assert delivery.retry_at == now + timedelta(milliseconds=12.5) + timedelta(seconds=2)
    delivery.record(CTX, target, 3, _result(502), POLICY)
    kinds = [type(e).__name__ for e in delivery.collect_events()]
    assert kinds == ["DeliveryAttempted", "DeliveryAttempted", "DeliveryDead"]
    assert delivery.status == "dead" and "after 3 attempts" in (delivery.last_error or "")
    with pytest.raises(Conflict):
        delivery.record(CTX, target, 4, _result(200), POLICY)


def test_a_2xx_delivers_and_ends_the_delivery() -> None:
    target = _target()
    delivery = Delivery.record_first(CTX, target, _result(204), POLICY)
    assert delivery.status == "delivered" and delivery.retry_at is None and delivery.last_error is None
    assert webhook_id(target.scheduling_event_id).startswith("msg_")


def test_secrets_are_derived_per_tenant_and_id_and_sign_as_the_standard_says() -> None:
    key = b"k" * 32
    a = derive_secret(key, "acme", "s1")
    assert a == derive_secret(key, "acme", "s1") and len(a) == 32
    assert a not in (
        derive_secret(key, "beta", "s1"),
        derive_secret(key, "acme", "s2"),
        derive_secret(b"x" * 32, "acme", "s1"),
    )
    with pytest.raises(ValueError):
        derive_secret(b"short", "acme", "s1")
    shown = secret_text(a)
    assert shown.startswith("whsec_")
    signature = sign(a, "msg_1", 1_700_000_000, b"{}")
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": signature}
    verify_webhook(headers, b"{}", shown, now=1_700_000_000)  # the receiver needs only the shown text
