"""The client against a real Quipu: a run reported over HTTP, its approval, checkpoints,
time travel and replay, the event DAG, and forks."""

from __future__ import annotations

import pytest

from quipu_client import Conflict
from tests.client.conftest import Served
from tests.client.support import eventually, finished_run


async def test_a_run_its_approval_timeline_and_metrics(served: Served) -> None:
    async with served.client() as quipu:
        run = await finished_run(quipu)
        assert run.state["outputs"]["fetch"] == {"pages": 3} and run.state["pages"] == 3
        timeline = await eventually(
            lambda: quipu.executions.timeline(run.id, event_types="llm_call"), lambda t: bool(t.timeline)
        )
        assert [item.event_type for item in timeline.timeline] == ["llm_call"]
        metrics = await eventually(lambda: quipu.executions.metrics(run.id), lambda m: m.totals.llm_calls == 1)
        assert metrics.totals.input_tokens == 10
        listed = await eventually(
            lambda: quipu.executions.list(workflow_id=run.workflow_id, status="succeeded"), lambda p: p.total == 1
        )
        assert listed.items[0].id == run.id
        with pytest.raises(Conflict) as refused:  # a finished run cannot be cancelled
            await quipu.executions.cancel(run.id, {"reason": "too late"})
        assert refused.value.problem.status == 409


async def test_checkpoints_time_travel_and_replay(served: Served) -> None:
    async with served.client() as quipu:
        run = await finished_run(quipu)
        taken = await quipu.checkpoints.create(run.id, {"label": "after"})
        await eventually(
            lambda: quipu.checkpoints.list(run.id),
            lambda page: taken.checkpoint_id in [c.checkpoint_id for c in page.items],
        )
        checkpoints = [c async for c in quipu.checkpoints.iter_list(run.id, order="asc", page_size=1)]
        assert taken.checkpoint_id in [c.checkpoint_id for c in checkpoints] and len(checkpoints) >= 2
        assert (await quipu.checkpoints.get(run.id, taken.checkpoint_id)).label == "after"
        diff = await quipu.checkpoints.compare(
            run.id, {"checkpoint_a": checkpoints[0].checkpoint_id, "checkpoint_b": taken.checkpoint_id}
        )
        assert "channel" in diff.added_keys

        envelopes = [e async for e in quipu.time_travel.replay(run.id)]
        assert envelopes[0].kind == "execution.started" and envelopes[-1].kind == "execution.checkpoint_taken"
        resumed = [e.event_id async for e in quipu.time_travel.replay(run.id, last_event_id=envelopes[2].event_id)]
        assert resumed == [e.event_id for e in envelopes[3:]]
        bounded = [e.version async for e in quipu.time_travel.replay(run.id, from_="2", to="3")]
        assert bounded == [2, 3]

        early = await quipu.time_travel.execution_state(run.id, as_of=str(envelopes[0].event_id))
        assert early.status == "running" and early.version == 1


async def test_event_dag_forensics(served: Served) -> None:
    async with served.client() as quipu:
        run = await finished_run(quipu)
        dag = await quipu.event_dag.correlation(correlation_id=run.id)
        events = sorted(dag.nodes, key=lambda e: e.notification_id)
        first, last = events[0], events[-1]
        assert len(dag.edges) >= len(events) - 1
        assert (await quipu.event_dag.get(first.event_id)).kind == "execution.started"
        path = await quipu.event_dag.path(from_=first.event_id, to=last.event_id)
        assert path.events[0].event_id == first.event_id and path.events[-1].event_id == last.event_id
        ancestors = await quipu.event_dag.ancestors(last.event_id, max_depth=50)
        assert first.event_id in {a.event.event_id for a in ancestors.items}
        descendants = await quipu.event_dag.descendants(first.event_id, kinds=["execution.succeeded"])
        assert [d.event.kind for d in descendants.items] == ["execution.succeeded"]
        started = [e async for e in quipu.event_dag.iter_by_kind("execution.started", page_size=1)]
        assert first.event_id in {e.event_id for e in started}
        common = await quipu.event_dag.common_ancestors(a=events[-1].event_id, b=events[-2].event_id)
        assert common.items
        assert (await quipu.event_dag.siblings(events[1].event_id)).total >= 0
        verified = await quipu.event_dag.verify(last.event_id)
        assert verified.ok and verified.checked >= len(path.events)


async def test_forks_and_branch_comparison(served: Served) -> None:
    async with served.client() as quipu:
        run = await finished_run(quipu)
        resumable = await quipu.branches.resumable_nodes(run.id)
        assert "fetch" in [n.node_id for n in resumable.items]
        checkpoint = next(n.checkpoint_id for n in resumable.items if n.checkpoint_id is not None)
        fork = await quipu.branches.resume_from_checkpoint(run.id, checkpoint, {"name": "again"})
        replayed = await quipu.branches.play_from_node(run.id, {"node_id": "fetch"})
        what_if = await quipu.branches.counterfactual(run.id, {"outputs": {"fetch": {"pages": 42}}})
        assert what_if.state["pages"] == 42
        tree = await eventually(lambda: quipu.branches.tree(run.id), lambda t: t.total >= 4)
        assert tree.root.execution_id == run.id
        compared = await quipu.branches.compare(a=run.id, b=what_if.id)
        assert compared.a == run.id and compared.common_ancestors
        await quipu.executions.pause(replayed.id)
        await quipu.executions.resume(replayed.id)
        cancelled = await quipu.executions.cancel(fork.id, {"reason": "enough"})
        assert cancelled.status == "cancelled"
