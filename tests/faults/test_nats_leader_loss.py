"""Losing the NATS server that leads the event stream, twice, under steady command load.

Quipu (``quipu up``: API, relay, projectors) runs on a local three-node JetStream cluster with
three replicas. The server leading the event stream is SIGKILLed; once it is back and current,
the stream's new leader is killed too (so a quorum of two always remains). Every acknowledged
command must be in the log, every logged event in the stream exactly once and in log order,
and the workflows read model must equal its rebuild. The counts and the lag (append -> read
model, in ms) are printed as one JSON line; bench/nats_failover.py is the same run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.nats_failover import run_leader_loss

pytestmark = pytest.mark.fault


@pytest.mark.timeout(600)
def test_leader_loss_loses_and_duplicates_nothing(database_url: str, tmp_path: Path) -> None:
    run = run_leader_loss(database_url, tmp_path)
    print("nats_leader_loss", json.dumps(run.summary()))
    assert [kill["was_leader"] for kill in run.kills] == [True, True], run.kills
    assert run.kills[0]["killed"] != run.kills[1]["killed"]
    assert run.sent > 0 and run.acknowledged, run.summary()
    # The command side never waits for NATS: a lost bus server costs no command.
    assert len(run.acknowledged) == run.sent, run.refused
    assert run.present == len(run.acknowledged)
    assert run.in_stream == run.log_events and run.duplicated == 0
    assert run.stream_matches_log, "the stream is not the log in log order"
    assert run.read_model_equals_rebuild
