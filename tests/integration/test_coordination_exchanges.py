"""Messages, delegations and handoffs over HTTP on real Postgres and NATS: every endpoint,
every illegal transition (409), tenant isolation, the exchange as one DAG path, search
finding agents and messages, and a delegation whose execution's note walks back to the
message that asked for it."""

from __future__ import annotations

import asyncio
import base64
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from commands.agents import AgentInput, AgentService
from domain.aggregate import CommandContext
from quipu_client.wire import Task
from quipu_client.worker import worker
from tests.integration.conftest import Running
from tests.integration.test_workers import workers

M, D, H = "/api/v1/messages", "/api/v1/delegations", "/api/v1/handoffs"


async def _agent(q: Running, agent_type: str, can_delegate_to: tuple[str, ...] = (), tenant: str = "acme") -> str:
    service = AgentService(q.ctx.store)
    data = AgentInput(agent_type=agent_type, capabilities=[f"{agent_type}-work"], can_delegate_to=list(can_delegate_to))
    agent, _ = await asyncio.to_thread(service.register, CommandContext(tenant, "test"), data)
    return str(agent.id)


async def _post(q: Running, path: str, body: dict[str, Any] | None, status: int, tenant: str = "acme") -> Any:
    r = await q.client.post(path, json=body, headers=q.auth(tenant))
    assert r.status_code == status, (r.status_code, r.text)
    if status >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


async def _get(q: Running, path: str, status: int = 200, tenant: str = "acme") -> Any:
    r = await q.client.get(path, headers=q.auth(tenant))
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


def _events(q: Running, stream_id: str) -> list[Any]:
    return list(q.ctx.store.events_of(UUID(stream_id)))


async def test_messages_send_list_get_acknowledge_reply_and_isolation(quipu: Running) -> None:
    q = quipu
    planner = await _agent(q, "planner", ("coder",))
    coder, coder2, reviewer = await _agent(q, "coder"), await _agent(q, "coder"), await _agent(q, "reviewer")
    outsider = await _agent(q, "coder", tenant="beta")

    direct = await _post(
        q,
        M,
        {"from_agent_id": planner, "to": {"agent_id": coder}, "message_type": "task_delegation"}
        | {"priority": "high", "payload": '{"task": "fix the parser"}', "artifact_ids": []},
        201,
    )
    assert direct["recipient_ids"] == [coder] and direct["sender_id"] == planner and direct["to"] == {"agent_id": coder}
    assert direct["delivered_at"] is None and direct["acknowledged_at"] is None and direct["last_event_id"]
    to_type = await _post(
        q, M, {"from_agent_id": planner, "to": {"agent_type": "coder"}, "message_type": "context_share"}, 201
    )
    assert sorted(to_type["recipient_ids"]) == sorted([coder, coder2])  # not the other tenant's coder
    everyone = await _post(q, M, {"from_agent_id": planner, "to": {}, "message_type": "coordination_signal"}, 201)
    assert sorted(everyone["recipient_ids"]) == sorted([coder, coder2, reviewer])  # all but the sender

    # bad input and unknown agents
    both = {"from_agent_id": planner, "to": {"agent_id": coder, "agent_type": "coder"}, "message_type": "interrupt"}
    await _post(q, M, both, 422)
    await _post(q, M, {"from_agent_id": planner, "to": {"agent_type": "nobody"}, "message_type": "interrupt"}, 409)
    await _post(q, M, {"from_agent_id": outsider, "message_type": "interrupt"}, 404)  # another tenant's sender
    await _post(q, M, {"from_agent_id": planner, "to": {"agent_id": outsider}, "message_type": "interrupt"}, 404)
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    await _post(
        q,
        M,
        {"from_agent_id": planner, "to": {"agent_id": coder}, "message_type": "heartbeat"} | {"expires_at": past},
        422,
    )

    got = await _get(q, f"{M}/{direct['message_id']}")
    assert got["payload"] == '{"task": "fix the parser"}' and got["priority"] == "high"

    # acknowledge: only a recipient, once
    ack = f"{M}/{direct['message_id']}/acknowledge"
    await _post(q, ack, {"agent_id": reviewer}, 409)
    done = await _post(q, ack, {"agent_id": coder}, 200)
    assert done["acknowledged_at"] and done["delivered_at"] and done["version"] == 2
    await _post(q, ack, {"agent_id": coder}, 409)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    fleeting = await _post(
        q,
        M,
        {"from_agent_id": planner, "to": {"agent_id": coder}, "message_type": "heartbeat"} | {"expires_at": soon},
        201,
    )
    await asyncio.sleep(1.2)
    await _post(q, f"{M}/{fleeting['message_id']}/acknowledge", {"agent_id": coder}, 409)

    # a reply names the answered message as its cause and shares its correlation
    reply = await _post(
        q,
        M,
        {
            "from_agent_id": coder,
            "to": {"agent_id": planner},
            "message_type": "task_result",
            "in_reply_to": direct["message_id"],
        },
        201,
    )
    [sent] = _events(q, reply["message_id"])
    assert UUID(done["last_event_id"]) in sent.parent_ids and str(sent.correlation_id) == direct["message_id"]

    # lists with the reference's filters (the read model follows the log)
    async def listed() -> bool:
        page = await _get(q, f"{M}?limit=100")
        return bool(page["total"] == 5)

    await q.wait_for(listed)
    page = await _get(q, f"{M}?to_agent_id={coder}&limit=100")
    assert page["total"] == 4 and {m["message_id"] for m in page["messages"]} >= {
        direct["message_id"],
        fleeting["message_id"],
    }
    unacked = await _get(q, f"{M}?to_agent_id={coder}&unacknowledged_only=true")
    assert direct["message_id"] not in {m["message_id"] for m in unacked["messages"]} and unacked["total"] == 3

    async def acked_listed() -> bool:
        page = await _get(q, f"{M}?to_agent_id={coder}&undelivered_only=true")
        return direct["message_id"] not in {m["message_id"] for m in page["messages"]}

    await q.wait_for(acked_listed)
    assert [m["message_id"] for m in (await _get(q, f"{M}?priority=high"))["messages"]] == [direct["message_id"]]
    assert (await _get(q, f"{M}?message_type=task_result"))["messages"][0]["in_reply_to"] == direct["message_id"]
    assert (await _get(q, f"{M}?from_agent_id={coder}"))["total"] == 1
    assert (await _get(q, f"{M}?to_agent_type=coder"))["total"] == 1
    paged = await _get(q, f"{M}?limit=2&offset=1")
    assert (paged["total"], len(paged["messages"]), paged["limit"], paged["offset"]) == (5, 2, 2, 1)

    # tenant isolation
    await _get(q, f"{M}/{direct['message_id']}", 404, tenant="beta")
    await _post(q, ack, {"agent_id": coder}, 404, tenant="beta")
    assert (await _get(q, M, tenant="beta"))["total"] == 0


async def test_delegation_state_machine_dag_path_and_isolation(quipu: Running) -> None:
    q = quipu
    planner = await _agent(q, "planner", ("coder",))
    coder, other_coder, reviewer = await _agent(q, "coder"), await _agent(q, "coder"), await _agent(q, "reviewer")
    ask = await _post(
        q, M, {"from_agent_id": planner, "to": {"agent_id": coder}, "message_type": "task_delegation"}, 201
    )
    ids = {"trajectory_id": str(UUID(int=1)), "scope_id": str(UUID(int=2))}
    body = {"from_agent_id": planner, "to_agent_id": coder, "task_description": "fix the parser"} | ids

    await _post(q, D, body | {"to_agent_id": reviewer}, 409)  # can_delegate_to names only coder
    await _post(q, D, body | {"from_agent_id": coder, "to_agent_id": other_coder}, 409)  # coder delegates to nothing
    await _post(q, D, body | {"to_agent_id": str(UUID(int=3))}, 404)
    created = await _post(q, D, body | {"message_id": ask["message_id"], "context": {"file": "p.py"}}, 201)
    assert (created["status"], created["delegator_id"], created["delegatee_id"]) == ("pending", planner, coder)
    assert created["message_id"] == ask["message_id"] and created["context"] == {"file": "p.py"}
    base = f"{D}/{created['delegation_id']}"

    await _post(q, f"{base}/complete", {"completing_agent_id": coder, "result": {}}, 409)  # not accepted yet
    await _post(q, f"{base}/accept", {"accepting_agent_id": other_coder}, 409)  # not the delegatee
    accepted = await _post(q, f"{base}/accept", {"accepting_agent_id": coder}, 200)
    assert accepted["status"] == "accepted" and accepted["accepted_at"] and accepted["execution_id"] is None
    await _post(q, f"{base}/accept", {"accepting_agent_id": coder}, 409)
    await _post(q, f"{base}/reject", {"rejecting_agent_id": coder, "reason": "late"}, 409)
    await _post(q, f"{base}/complete", {"completing_agent_id": planner, "result": {}}, 409)
    completed = await _post(q, f"{base}/complete", {"completing_agent_id": coder, "result": {"patch": "ok"}}, 200)
    assert (completed["status"], completed["result"]) == ("completed", {"patch": "ok"}) and completed["completed_at"]
    await _post(q, f"{base}/accept", {"accepting_agent_id": coder}, 409)  # a completed delegation stays completed
    await _post(q, f"{base}/complete", {"completing_agent_id": coder, "result": {}}, 409)
    assert (await _get(q, base))["status"] == "completed"

    # one DAG path: message -> created -> accepted -> completed
    events = _events(q, created["delegation_id"])
    assert [e.KIND for e in events] == ["delegation.created", "delegation.accepted", "delegation.completed"]
    assert UUID(ask["last_event_id"]) in events[0].parent_ids
    assert all(later.parent_ids[0] == earlier.event_id for earlier, later in itertools.pairwise(events))

    second = await _post(q, D, body, 201)
    rejected = await _post(
        q, f"{D}/{second['delegation_id']}/reject", {"rejecting_agent_id": coder, "reason": "busy"}, 200
    )
    assert (rejected["status"], rejected["rejection_reason"]) == ("rejected", "busy")
    for action, payload in (
        ("accept", {"accepting_agent_id": coder}),
        ("reject", {"rejecting_agent_id": coder, "reason": "again"}),
        ("complete", {"completing_agent_id": coder, "result": {}}),
    ):
        await _post(q, f"{D}/{second['delegation_id']}/{action}", payload, 409)

    # tenant isolation
    await _get(q, base, 404, tenant="beta")
    await _post(q, f"{D}/{second['delegation_id']}/accept", {"accepting_agent_id": coder}, 404, tenant="beta")
    beta_planner = await _agent(q, "planner", ("coder",), tenant="beta")
    await _post(q, D, body | {"from_agent_id": beta_planner}, 404, tenant="beta")  # acme's coder is unknown to beta


async def test_handoff_state_machine_and_isolation(quipu: Running) -> None:
    q = quipu
    lead, coder, other = await _agent(q, "lead", ("coder",)), await _agent(q, "coder"), await _agent(q, "coder")
    snapshot = base64.b64encode(b"\x00context state\xff").decode()
    body = {"from_agent_id": lead, "to_agent_id": coder, "reason": "shift ends", "context_snapshot": snapshot}
    body |= {"trajectory_id": str(UUID(int=1)), "scope_id": str(UUID(int=2))}
    await _post(q, H, body | {"from_agent_id": coder, "to_agent_id": other}, 409)  # not allowed by can_delegate_to
    created = await _post(q, H, body, 201)
    assert created["status"] == "initiated" and created["context_snapshot"] == snapshot
    base = f"{H}/{created['handoff_id']}"
    await _post(q, f"{base}/complete", None, 409)  # not accepted yet
    await _post(q, f"{base}/accept", {"accepting_agent_id": other}, 409)
    accepted = await _post(q, f"{base}/accept", {"accepting_agent_id": coder}, 200)
    assert accepted["status"] == "accepted" and accepted["accepted_at"]
    await _post(q, f"{base}/accept", {"accepting_agent_id": coder}, 409)
    completed = await _post(q, f"{base}/complete", None, 200)
    assert completed["status"] == "completed" and completed["completed_at"] and completed["version"] == 3
    await _post(q, f"{base}/complete", None, 409)
    await _post(q, f"{base}/accept", {"accepting_agent_id": coder}, 409)
    got = await _get(q, base)
    assert base64.b64decode(got["context_snapshot"]) == b"\x00context state\xff"
    events = _events(q, created["handoff_id"])
    assert all(later.parent_ids[0] == earlier.event_id for earlier, later in itertools.pairwise(events))
    await _get(q, base, 404, tenant="beta")
    await _post(q, f"{base}/complete", None, 404, tenant="beta")


async def test_search_finds_agents_and_messages(quipu: Running) -> None:
    q = quipu
    sender = await _agent(q, "cartographer")
    receiver = await _agent(q, "surveyor")
    note = {"from_agent_id": sender, "to": {"agent_id": receiver}, "message_type": "context_share"}
    message = await _post(q, M, note | {"payload": "the glacier moved eleven meters"}, 201)

    async def found() -> bool:
        r = await _post(q, "/api/v1/search", {"query": "glacier", "mode": "keyword"}, 200)
        return any(hit["entity_id"] == message["message_id"] for hit in r["results"])

    await q.wait_for(found)
    r = await _post(q, "/api/v1/search", {"query": "cartographer", "entity_types": ["agent"], "mode": "keyword"}, 200)
    assert [(h["entity_type"], h["entity_id"]) for h in r["results"]] == [("agent", sender)]
    assert r["results"][0]["_links"]["self"] == f"/api/v1/agents/{sender}"
    beta = await _post(q, "/api/v1/search", {"query": "glacier", "mode": "keyword"}, 200, tenant="beta")
    assert beta["results"] == []


FLOW = {
    "nodes": [{"id": "start", "type": "start"}, {"id": "write", "agent_type": "scribe"}, {"id": "end", "type": "end"}],
    "edges": [{"from": "start", "to": "write"}, {"from": "write", "to": "end"}],
}


async def test_a_note_written_by_a_delegated_run_walks_back_to_the_message_that_asked(quipu: Running) -> None:
    q = quipu
    planner, scribe = await _agent(q, "planner", ("scribe",)), await _agent(q, "scribe")
    wf = await _post(q, "/api/v1/workflows", {"name": "scribe", "definition": FLOW}, 201)
    ask = await _post(
        q,
        M,
        {
            "from_agent_id": planner,
            "to": {"agent_id": scribe},
            "message_type": "task_delegation",
            "payload": "write it down",
        },
        201,
    )
    ids = {"trajectory_id": str(UUID(int=1)), "scope_id": str(UUID(int=2))}
    delegation = await _post(
        q,
        D,
        {
            "from_agent_id": planner,
            "to_agent_id": scribe,
            "task_description": "note it",
            "message_id": ask["message_id"],
        }
        | ids,
        201,
    )
    notes: list[str] = []

    @worker("scribe")
    async def write(task: Task) -> dict[str, Any]:
        body = {"title": "minutes", "content": "we agreed", "note_type": "fact"}
        body |= {"execution_id": str(task.execution_id), "node_id": task.node_id}
        r = await q.client.post("/api/v1/notes", json=body, headers=q.auth())
        assert r.status_code == 201, r.text
        notes.append(r.json()["note_id"])
        return {"note_id": notes[-1]}

    async with workers(q, write):
        accepted = await _post(
            q,
            f"{D}/{delegation['delegation_id']}/accept",
            {"accepting_agent_id": scribe, "execution": {"workflow_id": wf["id"], "input": {"topic": "minutes"}}},
            200,
        )
        execution_id = accepted["execution_id"]
        assert execution_id and accepted["_links"]["execution"] == f"/api/v1/executions/{execution_id}"

        async def finished() -> bool:
            ex = await _get(q, f"/api/v1/executions/{execution_id}")
            return bool(ex["status"] == "succeeded")

        await q.wait_for(finished, timeout=30)
    started = _events(q, execution_id)[0]
    assert started.KIND == "execution.started" and UUID(accepted["last_event_id"]) in started.parent_ids

    p = await _get(q, f"/api/v1/notes/{notes[0]}/provenance?max_depth=50")
    walked = {e["event"]["event_id"]: e["event"]["kind"] for e in p["events"]}
    delegation_events = _events(q, delegation["delegation_id"])
    assert walked[str(started.event_id)] == "execution.started"
    assert walked[str(delegation_events[1].event_id)] == "delegation.accepted"
    assert walked[str(delegation_events[0].event_id)] == "delegation.created"
    assert walked[ask["last_event_id"]] == "message.sent"
