"""How one event becomes one JetStream message: subject, dedup id and headers."""

from __future__ import annotations

from domain.envelope import EventEnvelope


def headers_for(envelope: EventEnvelope) -> dict[str, str]:
    """``Nats-Msg-Id`` lets JetStream drop a relay's retry; ``traceparent`` ties the event to
    the trace of its correlation (trace id) and to itself (span id)."""
    return {
        "Nats-Msg-Id": str(envelope.event_id),
        "Quipu-Notification-Id": str(envelope.notification_id),
        "Quipu-Correlation-Id": str(envelope.correlation_id),
        "Quipu-Kind": envelope.kind,
        "Quipu-Tenant": envelope.tenant_id,
        "traceparent": f"00-{envelope.correlation_id.hex}-{envelope.event_id.hex[16:]}-01",
    }
