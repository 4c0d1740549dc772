"""A local three-node JetStream cluster of embedded nats-servers, with operator-mode auth.

Streams get the configured replicas (an existing one is scaled up), and a replica count above
the cluster size is refused and logged while the stream keeps working.
"""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bus import permissions
from bus.agent_messages import ensure_agent_messages_stream
from bus.runtime import NatsEndpoint, connect_nats
from bus.streams import StreamSettings, ensure_event_stream, ensure_work_streams, use_stream_settings
from bus.subjects import Subjects
from quipu.embedded import EmbeddedNatsCluster


async def _leader(js: Any, stream: str) -> str:
    """The server leading ``stream``, once its replicas have elected one."""
    deadline = time.monotonic() + 30
    while True:
        info = await js.stream_info(stream)
        if info.cluster is not None and info.cluster.leader:
            return str(info.cluster.leader)
        assert time.monotonic() < deadline, f"no leader for {stream}: {info.cluster}"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNatsCluster]:
    with EmbeddedNatsCluster(tmp_path_factory.mktemp("nats-cluster"), size=3) as running:
        yield running


def test_every_node_has_its_own_ports_and_store_and_clients_get_all_urls(cluster: EmbeddedNatsCluster) -> None:
    assert len(cluster.urls) == 3 and len(set(cluster.urls)) == 3
    assert cluster.url == ",".join(cluster.urls)
    assert len({node.data_dir for node in cluster.nodes}) == 3
    assert all((node.data_dir / "jetstream").is_dir() for node in cluster.nodes)
    assert cluster.env()["QUIPU_NATS_URL"] == cluster.url
    # The route password and ports are Quipu's secret as much as the keys are.
    assert stat.S_IMODE((cluster.data_dir / "cluster.json").stat().st_mode) == 0o600


async def test_a_minted_user_works_on_every_node_and_streams_get_three_replicas(
    cluster: EmbeddedNatsCluster,
) -> None:
    subjects = Subjects("cluster")
    assert cluster.authority is not None
    relay_user = cluster.authority.mint("quipu-relay", permissions.relay(subjects))
    for url in cluster.urls:  # the accounts are preloaded on each node, not fetched from one
        nc = await connect_nats(NatsEndpoint(url, relay_user), allow_reconnect=False)
        js = nc.jetstream(timeout=10)
        await ensure_agent_messages_stream(js, subjects)  # as any role: one replica here
        await nc.close()
    nc = await connect_nats(NatsEndpoint(cluster.url, relay_user))
    try:
        js = nc.jetstream(timeout=10)
        three = StreamSettings(replicas=3)
        # A missing event stream is created with its replicas; the relay's chain works on it.
        await ensure_event_stream(js, subjects, three)
        assert (await js.stream_info(subjects.events_stream)).config.num_replicas == 3
        assert await _leader(js, subjects.events_stream) in {"n1", "n2", "n3"}
        first = await js.publish(subjects.event("t", "x.a"), b"{}", headers={"Nats-Msg-Id": "e1"})
        chained = {"Nats-Msg-Id": "e2", "Nats-Expected-Last-Msg-Id": "e1"}
        assert (await js.publish(subjects.event("t", "x.b"), b"{}", headers=chained)).seq == first.seq + 1
        # An existing stream without the chain is scaled up...
        assert (await js.stream_info(subjects.agent_messages_stream)).config.num_replicas == 1
        with capture_logs() as logs:
            await ensure_agent_messages_stream(js, subjects, three)
        assert any(entry["event"] == "stream_updated" for entry in logs)
        assert (await js.stream_info(subjects.agent_messages_stream)).config.num_replicas == 3
        # ...and more replicas than servers are refused with JetStream's reason, the stream unchanged.
        with capture_logs() as logs:
            await ensure_agent_messages_stream(js, subjects, StreamSettings(replicas=5))
        refused = [entry for entry in logs if entry["event"] == "stream_update_refused"]
        assert refused and refused[0]["changes"] == {"num_replicas": {"current": 3, "configured": 5}}
        assert (await js.stream_info(subjects.agent_messages_stream)).config.num_replicas == 3
    finally:
        await nc.close()


async def test_the_event_stream_is_not_scaled_up_under_the_relays_chain(cluster: EmbeddedNatsCluster) -> None:
    """nats-server fails followers added by a scale-up on the next Nats-Expected-Last-Msg-Id
    message; Quipu leaves the replicas as they are and says why."""
    subjects = Subjects("scaled")
    nc = await connect_nats(cluster.endpoint)
    try:
        js = nc.jetstream(timeout=10)
        await ensure_event_stream(js, subjects, StreamSettings(replicas=1))
        await js.publish(subjects.event("t", "x.a"), b"{}", headers={"Nats-Msg-Id": "e1"})
        with capture_logs() as logs:
            await ensure_event_stream(js, subjects, StreamSettings(replicas=3, events_max_age=86400.0))
        refused = [entry for entry in logs if entry["event"] == "stream_update_refused"]
        assert refused and "Nats-Expected-Last-Msg-Id" in refused[0]["reason"]
        assert refused[0]["changes"] == {"num_replicas": {"current": 1, "configured": 3}}
        config = (await js.stream_info(subjects.events_stream)).config
        assert (config.num_replicas, config.max_age) == (1, 86400.0)  # the other change applied
        chained = {"Nats-Msg-Id": "e2", "Nats-Expected-Last-Msg-Id": "e1"}
        assert (await js.publish(subjects.event("t", "x.b"), b"{}", headers=chained)).seq == 2
    finally:
        await nc.close()


def test_a_restart_keeps_the_same_urls(cluster: EmbeddedNatsCluster, tmp_path: Path) -> None:
    again = EmbeddedNatsCluster(cluster.data_dir, size=3)
    assert [node.port for node in again.nodes] == [node.port for node in cluster.nodes]


async def test_every_role_creates_streams_with_the_configured_replicas(cluster: EmbeddedNatsCluster) -> None:
    subjects = Subjects("created")
    use_stream_settings(StreamSettings(replicas=3))  # as the wiring does from QUIPU_NATS_REPLICAS
    try:
        nc = await connect_nats(cluster.endpoint)
        js = nc.jetstream(timeout=10)
        await ensure_event_stream(js, subjects)  # as a projector: no settings of its own
        await ensure_work_streams(js, subjects)  # as the dispatcher
        await ensure_agent_messages_stream(js, subjects)
        for stream in (subjects.events_stream, subjects.tasks_stream, subjects.notices_stream):
            assert (await js.stream_info(stream)).config.num_replicas == 3, stream
        assert (await js.stream_info(subjects.agent_messages_stream)).config.num_replicas == 3
        await nc.close()
    finally:
        use_stream_settings(StreamSettings())
