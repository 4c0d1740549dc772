"""`quipu up --nats-cluster 3`: Quipu on a local three-node JetStream cluster of its own."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bus.runtime import NatsEndpoint, connect_nats
from bus.subjects import Subjects

QUIPU = [sys.executable, "-m", "quipu.cli"]


def _wait_runtime(proc: subprocess.Popen[str], data_dir: Path, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    runtime_file = data_dir / "runtime.json"
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "quipu up exited"
        if runtime_file.exists():
            return json.loads(runtime_file.read_text())  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("quipu up --nats-cluster 3 not ready")


async def _events_stream(runtime: dict[str, Any], creds: str) -> Any:
    nc = await connect_nats(NatsEndpoint(runtime["nats_url"], creds))
    try:
        js = nc.jetstream(timeout=10)
        deadline = time.monotonic() + 30
        while True:  # the relay updates the stream to three replicas once it leads
            info = await js.stream_info(Subjects("quipu").events_stream)
            if info.config.num_replicas == 3 and info.cluster and info.cluster.leader and info.state.messages:
                return info
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


def test_up_with_a_nats_cluster_of_three(tmp_path: Path) -> None:
    data_dir = tmp_path / "quipu-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_")}
    proc = subprocess.Popen(
        [*QUIPU, "--data-dir", str(data_dir), "up", "--nats-cluster", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        runtime = _wait_runtime(proc, data_dir)
        urls = runtime["nats_url"].split(",")
        assert len(urls) == 3 and all(url.startswith("nats://127.0.0.1:") for url in urls)
        assert sorted(p.name for p in (data_dir / "nats-cluster").iterdir() if p.name.startswith("n")) == [
            "n1",
            "n2",
            "n3",
        ]
        created = httpx.post(
            f"{runtime['api_url']}/workflows",
            headers={"Authorization": f"Bearer {runtime['api_key']}"},
            json={"name": "clustered", "definition": {"nodes": [{"id": "a"}]}},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        info = asyncio.run(_events_stream(runtime, Path(runtime["nats_credentials"]).read_text()))
        assert {peer.name for peer in info.cluster.replicas} | {info.cluster.leader} == {"n1", "n2", "n3"}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
