"""Every log line of a request carries request id, tenant and correlation id; metrics move."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from tests.integration.conftest import Running


async def test_request_log_lines_carry_request_tenant_and_correlation(quipu: Running) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        r = await quipu.client.post(
            "/api/v1/workflows",
            json={"name": "w", "definition": {"nodes": [{"id": "a"}]}},
            headers={**quipu.auth(), "X-Request-ID": "req-123"},
        )
    assert r.headers["x-request-id"] == "req-123"
    line = next(entry for entry in logs if entry["event"] == "http_request" and entry.get("request_id") == "req-123")
    assert line["tenant_id"] == "acme"
    assert line["correlation_id"] == r.json()["id"]
    assert line["status"] == 201 and line["path"] == "/api/v1/workflows"
    # Nothing sensitive: the bearer key never reaches a log line.
    assert not any(quipu.keys["acme"] in str(entry) for entry in logs)


async def test_metrics_count_appends_and_projector_progress(quipu: Running) -> None:
    def sample(text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    before = sample((await quipu.client.get("/metrics")).text, "quipu_appends_total")
    await quipu.client.post(
        "/api/v1/workflows", json={"name": "w", "definition": {"nodes": [{"id": "a"}]}}, headers=quipu.auth()
    )
    after_text = (await quipu.client.get("/metrics")).text
    assert sample(after_text, "quipu_appends_total") == before + 1
    assert "quipu_append_seconds_bucket" in after_text
    for name in ("quipu_relay_lag_seconds", "quipu_projection_lag_seconds", "quipu_projection_errors_total"):
        assert f"# TYPE {name}" in after_text, name
