"""Stream replicas and limits from configuration, on a real (single-node) nats-server.

Creating, updating an existing stream to the configuration, and the changes JetStream refuses
(logged as ``stream_update_refused`` while Quipu goes on with the stream as it is). Replicas
above one need a cluster: tests/faults/test_nats_leader_loss.py runs on three nodes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.api import StorageType, StreamConfig
from structlog.testing import capture_logs

from bus.agent_messages import ensure_agent_messages_stream
from bus.relay import Relay
from bus.streams import (
    DUPLICATE_WINDOW_SECONDS,
    StreamRefused,
    StreamSettings,
    ensure_event_stream,
    process_stream_settings,
    use_stream_settings,
)
from bus.subjects import Subjects
from quipu.config import Settings
from quipu.wiring import Wiring


async def _config(nats_client: Any, name: str) -> StreamConfig:
    info = await nats_client.jetstream().stream_info(name)
    return info.config  # type: ignore[no-any-return]


async def test_a_new_event_stream_gets_the_configured_limits(nats_client: Any, subjects: Subjects) -> None:
    js = nats_client.jetstream()
    await ensure_event_stream(js, subjects, StreamSettings(1, 64 << 20, 7 * 86400.0))
    config = await _config(nats_client, subjects.events_stream)
    assert (config.max_bytes, config.max_age, config.num_replicas) == (64 << 20, 7 * 86400.0, 1)
    assert config.duplicate_window == DUPLICATE_WINDOW_SECONDS


async def test_an_existing_stream_is_updated_to_the_configuration_and_back(
    nats_client: Any, subjects: Subjects
) -> None:
    js = nats_client.jetstream()
    await ensure_event_stream(js, subjects)  # as a projector would: no limits
    with capture_logs() as logs:
        await ensure_event_stream(js, subjects, StreamSettings(1, 1 << 20, 3600.0))
    config = await _config(nats_client, subjects.events_stream)
    assert (config.max_bytes, config.max_age) == (1 << 20, 3600.0)
    updated = [entry for entry in logs if entry["event"] == "stream_updated"]
    assert updated and updated[0]["changes"] == {"max_bytes": 1 << 20, "max_age": 3600.0}
    # Without settings (any other role) an existing stream is left alone...
    await ensure_event_stream(js, subjects)
    assert (await _config(nats_client, subjects.events_stream)).max_bytes == 1 << 20
    # ...and the relay's default settings (no limits) lift them again.
    with capture_logs() as logs:
        await ensure_event_stream(js, subjects, StreamSettings())
    config = await _config(nats_client, subjects.events_stream)
    assert (config.max_bytes, config.max_age) == (-1, 0.0)
    # A stream that matches is not touched.
    with capture_logs() as logs:
        await ensure_event_stream(js, subjects, StreamSettings())
    assert [entry["event"] for entry in logs if entry["event"].startswith("stream_")] == []


async def test_a_change_jetstream_refuses_is_logged_and_the_stream_kept(nats_client: Any, subjects: Subjects) -> None:
    js = nats_client.jetstream()
    # Someone made the stream in memory; JetStream cannot change a stream's storage type.
    await js.add_stream(
        StreamConfig(name=subjects.events_stream, subjects=[subjects.all_events], storage=StorageType.MEMORY)
    )
    with capture_logs() as logs:
        await ensure_event_stream(js, subjects, StreamSettings(1, 1 << 20, None))
    refused = [entry for entry in logs if entry["event"] == "stream_update_refused"]
    assert len(refused) == 1 and refused[0]["log_level"] == "error"
    assert "storage" in refused[0]["reason"] and refused[0]["stream"] == subjects.events_stream
    assert refused[0]["changes"]["storage"] == {"current": "memory", "configured": "file"}
    config = await _config(nats_client, subjects.events_stream)
    assert config.storage == StorageType.MEMORY and config.max_bytes == -1  # nothing half-applied


async def test_replicas_above_the_cluster_size_are_refused(nats_client: Any, subjects: Subjects) -> None:
    js = nats_client.jetstream()
    three = StreamSettings(replicas=3)
    # Creating a stream JetStream cannot place fails with the server's reason...
    with pytest.raises(StreamRefused, match="replicas > 1 not supported in non-clustered mode"):
        await ensure_event_stream(js, subjects, three)
    # ...and an existing one stays as it is, with the refusal in the log.
    await ensure_agent_messages_stream(js, subjects)
    with capture_logs() as logs:
        await ensure_agent_messages_stream(js, subjects, three)
    refused = [entry for entry in logs if entry["event"] == "stream_update_refused"]
    assert refused and refused[0]["changes"] == {"num_replicas": {"current": 1, "configured": 3}}
    assert (await _config(nats_client, subjects.agent_messages_stream)).num_replicas == 1


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUIPU_NATS_REPLICAS", "3")
    monkeypatch.setenv("QUIPU_NATS_EVENTS_MAX_BYTES", str(10 << 30))
    monkeypatch.setenv("QUIPU_NATS_EVENTS_MAX_AGE", "604800")
    try:
        wiring = Wiring.from_settings(Settings(), "postgresql://unused", "nats://unused")
        assert wiring.streams == StreamSettings(3, 10 << 30, 604800.0)
        assert process_stream_settings() == wiring.streams  # what this process's roles create with
    finally:
        use_stream_settings(StreamSettings())  # the rest of the session runs on one server
    monkeypatch.delenv("QUIPU_NATS_REPLICAS")
    monkeypatch.delenv("QUIPU_NATS_EVENTS_MAX_BYTES")
    monkeypatch.delenv("QUIPU_NATS_EVENTS_MAX_AGE")
    assert Wiring.from_settings(Settings(), "postgresql://unused", "nats://unused").streams == StreamSettings()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicas": 0}, "QUIPU_NATS_REPLICAS"),
        ({"replicas": 6}, "QUIPU_NATS_REPLICAS"),
        ({"events_max_bytes": 0}, "QUIPU_NATS_EVENTS_MAX_BYTES"),
        ({"events_max_age": 60.0}, "deduplication window"),
    ],
)
def test_settings_jetstream_would_refuse_are_rejected_at_start(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamSettings(**kwargs)


async def test_a_relay_whose_stream_cannot_be_created_stops_with_the_reason(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    """Three replicas on one server: not a retry loop, the relay (and so its process) stops."""
    relay = Relay(database_url, nats_url, subjects, streams=StreamSettings(replicas=3))
    with pytest.raises(StreamRefused, match="not supported in non-clustered mode"):
        await asyncio.wait_for(relay.run(asyncio.Event()), 60)
