"""NATS with authentication and per-role permissions (docs/decisions/0005-nats-operator-jwt-auth.md):
nobody reaches NATS without credentials, and a worker's credentials reach its own tenant's tasks and reports only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout

from api.app import create_app
from bus.runtime import connect_nats
from bus.subjects import Subjects
from quipu_client.models.workers import WorkerCredentials
from quipu_client.wire import Report, ReportReply, Task
from quipu_client.worker import Worker, WorkerLogin, serve_workers
from tests.integration.conftest import Running, running_quipu
from tests.integration.servers import serving
from tests.nats_access import authority_of

ONE_TASK = {"nodes": [{"id": "only", "agent_type": "summarize"}]}


@pytest.fixture
def authenticated(nats_url: str) -> None:
    if authority_of(nats_url) is None:  # QUIPU_TEST_NATS_URL points at a NATS without auth
        pytest.skip("this NATS runs without authentication")


@pytest.fixture
async def api_url(quipu: Running) -> AsyncIterator[str]:
    """The same Quipu served over real HTTP: workers log in with httpx."""
    async with serving(create_app(quipu.ctx)) as url:
        yield url


async def _worker_key(q: Running, tenant: str) -> str:
    r = await q.client.post("/api/v1/api-keys", json={"name": "w", "scopes": ["worker"]}, headers=q.auth(tenant))
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


async def _start(q: Running, tenant: str) -> str:
    h = q.auth(tenant)
    wf = (await q.client.post("/api/v1/workflows", json={"name": "one", "definition": ONE_TASK}, headers=h)).json()
    r = await q.client.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _status(q: Running, tenant: str, execution_id: str) -> dict[str, Any]:
    r = await q.client.get(f"/api/v1/executions/{execution_id}", headers=q.auth(tenant))
    assert r.status_code == 200
    return dict(r.json())


async def _login(api_url: str, key: str) -> tuple[WorkerLogin, NATS, list[Exception]]:
    login = WorkerLogin(api_url, key, ["summarize"], "test-worker")
    errors: list[Exception] = []

    async def on_error(error: Exception) -> None:
        errors.append(error)

    await login.login()
    return login, await login.connect(allow_reconnect=False, error_cb=on_error), errors


def _violations(errors: list[Exception]) -> list[str]:
    return [str(e) for e in errors if "permissions violation" in str(e).lower()]


async def _metric(q: Running, name: str, labels: str) -> float:
    text = (await q.client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.usefixtures("authenticated")
async def test_nats_refuses_clients_without_credentials(nats_url: str) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(str(nats_url), allow_reconnect=False, connect_timeout=2)


@pytest.mark.usefixtures("authenticated")
async def test_worker_credentials_need_a_worker_key(quipu: Running) -> None:
    body = {"agent_types": ["summarize"]}
    reader = await quipu.client.post("/api/v1/workers/credentials", json=body, headers=quipu.auth("acme-reader"))
    assert reader.status_code == 403
    anonymous = await quipu.client.post("/api/v1/workers/credentials", json=body)
    assert anonymous.status_code == 401
    bad = await quipu.client.post(
        "/api/v1/workers/credentials", json={"agent_types": ["a.b"]}, headers=quipu.auth("acme")
    )
    assert bad.status_code == 422
    key = await _worker_key(quipu, "acme")
    r = await quipu.client.post("/api/v1/workers/credentials", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    grant = r.json()
    assert grant["tenant_id"] == "acme" and "BEGIN NATS USER JWT" in grant["credentials"]
    assert grant["report_subject"] == quipu.wiring.subjects.reports("acme")
    # A worker key reads nothing else.
    listing = await quipu.client.get("/api/v1/workflows", headers={"Authorization": f"Bearer {key}"})
    assert listing.status_code == 403


@pytest.mark.usefixtures("authenticated")
async def test_a_worker_reaches_only_its_own_tenants_tasks_and_reports(quipu: Running, api_url: str) -> None:
    subjects = quipu.wiring.subjects
    beta_execution = await _start(quipu, "beta")
    _, acme, acme_errors = await _login(api_url, await _worker_key(quipu, "acme"))
    beta_login, beta, _ = await _login(api_url, await _worker_key(quipu, "beta"))
    assert isinstance(beta_login.grant, WorkerCredentials)
    beta_consumer = beta_login.grant.consumers["summarize"]
    try:
        js = acme.jetstream(timeout=2)
        # Tenant A pulls from B's consumer: refused by NATS, the task stays for B.
        stolen = await js.pull_subscribe_bind(beta_consumer, stream=subjects.tasks_stream)
        with pytest.raises((NatsTimeout, TimeoutError)):
            await stolen.fetch(1, timeout=1)
        # A cannot read the event stream, nor publish an event or a report on B's subject.
        await acme.subscribe(subjects.all_events)
        await acme.publish(subjects.event("beta", "workflow.created"), b"{}")
        forged = Report(type="complete", execution_id=beta_execution, node_id="only", output={"by": "acme"})  # type: ignore[arg-type]
        await acme.publish(subjects.reports("beta"), msgspec.json.encode(forged))
        await acme.flush()
        await asyncio.sleep(0.5)
        assert len(_violations(acme_errors)) >= 4, acme_errors
        # On its own report subject, A names B's execution: 404, counted, nothing changes.
        before = await _metric(quipu, "quipu_worker_reports_total", 'status="404"')
        reply = await acme.request(subjects.reports("acme"), msgspec.json.encode(forged), timeout=5)
        assert msgspec.json.decode(reply.data, type=ReportReply).status == 404
        assert await _metric(quipu, "quipu_worker_reports_total", 'status="404"') == before + 1
        state = await _status(quipu, "beta", beta_execution)
        assert state["status"] == "running" and state.get("output", {}) in ({}, None)
        # B's worker takes its task: it was never taken by A.
        mine = await beta.jetstream(timeout=5).pull_subscribe_bind(beta_consumer, stream=subjects.tasks_stream)
        msgs = await mine.fetch(1, timeout=10)
        task = msgspec.json.decode(msgs[0].data, type=Task)
        assert task.tenant_id == "beta" and str(task.execution_id) == beta_execution
    finally:
        await acme.close()
        await beta.close()


@pytest.mark.usefixtures("authenticated")
async def test_the_worker_helper_runs_a_task_with_only_a_url_and_a_key(quipu: Running, api_url: str) -> None:
    async def summarize(task: Task) -> dict[str, Any]:
        return {"summary": f"done by {task.tenant_id}"}

    execution_id = await _start(quipu, "acme")
    stop = asyncio.Event()
    key = await _worker_key(quipu, "acme")
    serving_workers = asyncio.create_task(
        serve_workers(
            [Worker("summarize", summarize)], quipu_url=api_url, api_key=key, stop=stop, heartbeat_seconds=0.2
        )
    )
    try:

        async def finished() -> bool:
            return (await _status(quipu, "acme", execution_id))["status"] == "succeeded"

        await quipu.wait_for(finished)
        state = (await quipu.client.get(f"/api/v1/executions/{execution_id}/state", headers=quipu.auth())).json()
        assert state["state"]["summary"] == "done by acme"
    finally:
        stop.set()
        await asyncio.wait_for(serving_workers, 15)


@pytest.mark.usefixtures("authenticated")
async def test_the_worker_helper_started_before_quipu_answers_waits_and_then_works(quipu: Running) -> None:
    """A worker started before Quipu's API listens (or while it restarts) keeps trying to log in
    instead of exiting, and runs tasks once Quipu answers."""
    from quipu.embedded import free_port

    async def summarize(task: Task) -> dict[str, Any]:
        return {"summary": "waited for quipu"}

    key = await _worker_key(quipu, "acme")
    port = free_port()
    stop = asyncio.Event()
    helper = asyncio.create_task(
        serve_workers(
            [Worker("summarize", summarize)], quipu_url=f"http://127.0.0.1:{port}", api_key=key, stop=stop
        )
    )
    try:
        await asyncio.sleep(2)  # several refused connections
        assert not helper.done(), helper.exception() if helper.done() else None
        async with serving(create_app(quipu.ctx), port=port):
            execution_id = await _start(quipu, "acme")

            async def finished() -> bool:
                return (await _status(quipu, "acme", execution_id))["status"] == "succeeded"

            await quipu.wait_for(finished)
    finally:
        stop.set()
        await asyncio.wait_for(helper, 15)


async def test_the_worker_helper_stopped_while_quipu_is_unreachable_returns() -> None:
    from quipu.embedded import free_port

    stop = asyncio.Event()
    helper = asyncio.create_task(
        serve_workers(
            [Worker("summarize", lambda task: {})],  # type: ignore[arg-type,return-value]
            quipu_url=f"http://127.0.0.1:{free_port()}",
            api_key="qk_never_checked",
            stop=stop,
        )
    )
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(helper, 10)  # returns, no exception


@pytest.mark.usefixtures("authenticated")
async def test_roles_have_only_their_permissions(quipu: Running) -> None:
    """The projector's user may not publish events; the relay's may not publish tasks."""
    from bus import permissions

    subjects = quipu.wiring.subjects
    for rights, subject in (
        (permissions.projector(subjects), subjects.event("acme", "workflow.created")),
        (permissions.dispatcher(subjects), subjects.event("acme", "workflow.created")),
        (permissions.relay(subjects), subjects.task("acme", "summarize")),
        (permissions.api(subjects), subjects.event("acme", "workflow.created")),
    ):
        errors: list[Exception] = []

        async def on_error(error: Exception, sink: list[Exception] = errors) -> None:
            sink.append(error)

        nc = await connect_nats(quipu.wiring.nats_as(rights, "probe"), allow_reconnect=False, error_cb=on_error)
        try:
            await nc.publish(subject, b"{}")
            await nc.flush()
            await asyncio.sleep(0.3)
        finally:
            await nc.close()
        assert _violations(errors), (rights, subject)


@pytest.mark.usefixtures("authenticated")
async def test_the_worker_helper_renews_credentials_before_they_expire(
    database_url: str, nats_url: str, subjects: Subjects
) -> None:
    """Credentials live 3 s here: NATS closes the connection when they expire, and the helper
    reconnects with the renewed ones, so tasks started after several lifetimes still run."""

    async def summarize(task: Task) -> dict[str, Any]:
        return {"summary": "late but done"}

    async with (
        running_quipu(database_url, nats_url, subjects, worker_credentials_ttl=3) as q,
        serving(create_app(q.ctx)) as url,
    ):
        stop = asyncio.Event()
        key = await _worker_key(q, "acme")
        helper = asyncio.create_task(
            serve_workers([Worker("summarize", summarize)], quipu_url=url, api_key=key, stop=stop)
        )
        try:
            await asyncio.sleep(8)  # well past two lifetimes
            assert not helper.done()
            execution_id = await _start(q, "acme")

            async def finished() -> bool:
                return (await _status(q, "acme", execution_id))["status"] == "succeeded"

            await q.wait_for(finished)
        finally:
            stop.set()
            await asyncio.wait_for(helper, 15)
