"""Quickstart: a workflow, a run, its tasks served by a worker, and what the log says afterwards.

    QUIPU_URL=http://127.0.0.1:8000 QUIPU_API_KEY=qk_... python quickstart.py

QUIPU_URL is Quipu's root (``make run`` prints it and writes it to runtime.json), and the
key needs the ``write`` scope (the worker below logs in with the same key).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from quipu_client import AsyncQuipuClient
from quipu_client.models import DefinitionInput, ExecutionStart, Node, WorkflowEdge, WorkflowWrite
from quipu_client.worker import Task, serve_workers, worker

URL, KEY = os.environ["QUIPU_URL"], os.environ["QUIPU_API_KEY"]


@worker("quickstart_fetch")
async def fetch(task: Task) -> dict[str, Any]:
    return {"pages": 3}


@worker("quickstart_summarise")
async def summarise(task: Task) -> dict[str, Any]:
    return {"summary": f"{task.input['pages']} pages about {task.input['topic']}"}


async def main() -> None:
    async with AsyncQuipuClient(URL, KEY) as quipu:
        workflow = await quipu.workflows.create(
            WorkflowWrite(
                name="quickstart",
                definition=DefinitionInput(
                    nodes=[
                        Node(id="fetch", agent_type="quickstart_fetch"),
                        Node(id="summarise", agent_type="quickstart_summarise"),
                    ],
                    edges=[WorkflowEdge(from_="fetch", to="summarise")],
                ),
            )
        )
        stop = asyncio.Event()
        workers = asyncio.create_task(serve_workers([fetch, summarise], quipu_url=URL, api_key=KEY, stop=stop))
        try:
            run = await quipu.executions.start(ExecutionStart(workflow_id=workflow.id, input={"topic": "q3"}))
            # The live stream ends with ``completed``; a dropped connection resumes by itself.
            async with asyncio.timeout(60):
                async for event in quipu.executions.events(run.id, from_start=True):
                    if event.event == "completed":
                        break
        finally:
            stop.set()
            await workers
        done = await quipu.executions.get(run.id)
        print(done.status)

        events = (await quipu.event_dag.correlation(correlation_id=run.id)).nodes
        events.sort(key=lambda e: e.notification_id)  # log order
        middle = events[len(events) // 2]
        then = await quipu.time_travel.execution_state(run.id, as_of=str(middle.event_id))
        print(f"as of {middle.kind} (version {then.version}): status {then.status}, nodes {then.nodes}")

        path = await quipu.event_dag.path(from_=events[0].event_id, to=events[-1].event_id)
        print(" -> ".join(e.kind for e in path.events))


if __name__ == "__main__":
    asyncio.run(main())
