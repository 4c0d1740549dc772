"""The state cache (commands.state_cache) is only a shortcut: a load that starts from a
cached state equals a full replay of the stored events, at every version, after random
command histories, in any order of reads, and while another store (another process)
appends to the same stream behind the cache's back."""

from __future__ import annotations

import asyncio
import random
from typing import Any
from uuid import UUID

import pytest

from commands.errors import ConcurrencyConflict
from commands.executions import ExecutionService
from commands.store import EventStore, postgres_env
from commands.workflows import WorkflowInput, WorkflowService
from domain.aggregate import CommandContext
from domain.errors import Conflict
from domain.execution import Execution
from domain.scheduling import NodeStatus
from domain.timers import TimerKind
from domain.workflow_graph import Edge, Node, WorkflowDefinition

TENANT = "acme"
DEFINITION = WorkflowDefinition(
    nodes=[
        Node(id="start", type="start"),
        *(Node(id=n, agent_type="w", max_retries=2, config={"retry_backoff": 0}) for n in "abcd"),
        Node(id="end", type="end"),
    ],
    edges=[
        Edge(source="start", target="a"),
        *(Edge(source="a", target=t) for t in "bc"),
        *(Edge(source=s, target="d") for s in "bc"),
        Edge(source="d", target="end"),
    ],
)


def _fields(e: Execution) -> dict[str, Any]:
    return {k: v for k, v in vars(e).items() if k != "_pending"}


def _random_run(stores: list[EventStore], seed: int) -> UUID:
    """One execution driven by random commands, each through a randomly chosen store."""
    rng = random.Random(seed)
    services = [ExecutionService(s, WorkflowService(s)) for s in stores]
    ctx = CommandContext(TENANT, "test")
    workflow, _ = WorkflowService(stores[0]).create(ctx, WorkflowInput("cache", "", DEFINITION, {}))
    execution, _ = services[0].start(ctx, workflow.id, version=None, input={"seed": seed})
    for step in range(60):
        service = rng.choice(services)
        current = service.get(TENANT, execution.id)
        if current.status.value in ("succeeded", "failed"):
            break
        working = [n for n, s in current.nodes.items() if s in (NodeStatus.SCHEDULED, NodeStatus.RUNNING)]
        retrying = [n for n, s in current.nodes.items() if s is NodeStatus.RETRYING]
        choice = rng.random()
        try:
            if retrying and choice < 0.3:
                node = rng.choice(retrying)
                service.fire_timer(TENANT, execution.id, TimerKind.RETRY, node, current.attempts[node])
            elif not working or choice < 0.4:
                service.act(ctx, execution.id, lambda e, c, i=step: e.take_checkpoint(c, f"step {i}"))
            else:
                node = rng.choice(working)
                command = rng.choice(["heartbeat", "complete", "complete", "fail"])
                if command == "heartbeat":
                    service.act(ctx, execution.id, lambda e, c, n=node: e.heartbeat(c, n))
                elif command == "complete":
                    service.act(ctx, execution.id, lambda e, c, n=node, i=step: e.complete_node(c, n, {n: i}))
                else:
                    service.act(ctx, execution.id, lambda e, c, n=node, i=step: e.fail_node(c, n, f"error {i}"))
        except (Conflict, ConcurrencyConflict):
            pass  # a command the state refused is part of a random history too
    return execution.id


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_cached_loads_equal_full_replays(database_url: str, seed: int) -> None:
    def check() -> None:
        env = postgres_env(database_url, pool_size=2)
        # Two stores are two processes: each caches what it loaded, the other appends behind it.
        first = EventStore(env={**env, "SNAPSHOT_INTERVAL": "9"})
        second = EventStore(env={**env, "SNAPSHOT_INTERVAL": "9", "STATE_CACHE_ENTRIES": "3"})
        try:
            execution_id = _random_run([first, second], seed)
            head = first.load(Execution, execution_id, TENANT, snapshots=False).version
            assert head > 10
            # The latest state through either cache is the log's, whoever appended last.
            for store in (first, second):
                assert _fields(store.load(Execution, execution_id, TENANT)) == _fields(
                    store.load(Execution, execution_id, TENANT, snapshots=False)
                )
            rng = random.Random(seed)
            versions = [rng.randint(1, head) for _ in range(3 * head)]
            for version in versions:
                for store in (first, second):
                    cached = store.load(Execution, execution_id, TENANT, version=version)
                    replayed = store.load(Execution, execution_id, TENANT, version=version, snapshots=False)
                    assert cached.version == version
                    assert _fields(cached) == _fields(replayed), version
            assert first.states is not None and first.states.hits > 0
            # What a caller does to a loaded aggregate never reaches the cache.
            loaded = first.load(Execution, execution_id, TENANT)
            loaded.state["planted"] = True
            loaded.nodes.clear()
            again = first.load(Execution, execution_id, TENANT)
            assert "planted" not in again.state and again.nodes
        finally:
            first.close()
            second.close()

    await asyncio.to_thread(check)
