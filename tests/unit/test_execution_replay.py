"""Any history of worker reports, answers, decisions, timer firings and steering, replayed
from its encoded events, rebuilds exactly the execution that decided it (hypothesis)."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.execution import Execution
from domain.scheduling import NodeStatus
from domain.workflow_graph import Node
from tests.unit.builders import CLOCK, CTX, TICK, flow, replay, view

MIXED = flow(
    Node(id="t1", timeout=60, max_retries=1),
    Node(id="gate", type="approval", timeout=600),
    Node(id="pick", type="decision", config={"external": True}),
    Node(id="p1"),
    Node(id="p2", max_retries=2, config={"retry_backoff": 0}),
    Node(id="t2"),
    edges="start>t1 start>gate start>pick pick>p1 pick>p2 t1>t2 gate>t2 p1>t2 p2>t2 t2>end",
)
TASKS = ["t1", "p1", "p2", "t2", "gate", "pick"]
Op = tuple[str, int, bool]


def _act(ex: Execution, op: Op) -> None:
    name, n, flag = op
    working = sorted(k for k, v in ex.nodes.items() if v in (NodeStatus.SCHEDULED, NodeStatus.RUNNING))
    choices = working if working and n < 9 else TASKS  # mostly a node that can be reported on
    node = choices[n % len(choices)]
    if name == "beat":
        ex.heartbeat(CTX, node, ex.attempts.get(node) if flag else None)
    elif name == "done":
        ex.complete_node(CTX, node, {f"k{n % 3}": n})
    elif name == "fail":
        ex.fail_node(CTX, node, f"e{n}")
    elif name == "answer":
        ex.respond_to_approval(CTX, "gate", approved=flag or n % 4 > 0, state_changes={"answer": n})
    elif name == "decide":
        ex.decide(CTX, "pick", [t for t, keep in (("p1", flag), ("p2", n % 2 == 0)) if keep])
    elif name == "timer":
        timers = ex.timers()
        if timers:
            t, version = timers[n % len(timers)], ex.version
            fired = ex.fire_timer(CLOCK, t.kind, t.node_id, t.attempt, now=t.due_at if flag else t.due_at - TICK)
            assert fired == (ex.version > version) and (flag or not fired)  # never early, True iff recorded
    else:
        {"pause": ex.pause, "resume": ex.resume, "cancel": ex.cancel, "checkpoint": ex.take_checkpoint}[name](CTX)


OPS = st.tuples(
    st.sampled_from(["beat", "done", "done", "done", "fail", "answer", "decide", "timer", "timer", "pause",
                     "resume", "checkpoint"] * 3 + ["cancel"]),
    st.integers(0, 11),
    st.booleans(),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=5, max_size=40), st.booleans())
def test_replaying_any_history_rebuilds_the_same_execution(ops: list[Op], timed: bool) -> None:
    ex = Execution.start(
        CTX,
        execution_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(),
        workflow_version=1,
        definition=MIXED,
        input={"query": "q"},
        timeout=3600 if timed else None,
    )
    log = ex.collect_events()
    for op in ops:
        version = ex.version
        try:
            _act(ex, op)
        except DomainError:
            assert ex.version == version  # a refused command records nothing
        log += ex.collect_events()
        assert [e.originator_version for e in log] == list(range(1, ex.version + 1))
    rebuilt = replay(log)
    assert view(rebuilt) == view(ex)
    assert rebuilt.pending_approvals() == ex.pending_approvals() and rebuilt.taken == ex.taken
