"""A real worker process for the end-to-end run (argv: API_URL API_KEY NAME).

It serves both agent types of the workflow, as the README's worker does, and reports
glass-box telemetry over HTTP. Its outputs are deterministic, so a run's final state is
known in advance whatever process ran which node and whatever restarted in between.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx

from quipu_client.worker import Task, TaskFailed, run, worker

API_URL, API_KEY, NAME = sys.argv[1:4]
SLOW_FIRST_ATTEMPT_SECONDS = 60.0  # far beyond the node's timeout: Quipu must time it out


async def telemetry(task: Task, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(60):  # Quipu may be restarting: try for a while
            try:
                r = await client.post(
                    f"{API_URL}/executions/{task.execution_id}/telemetry",
                    json={"node_id": task.node_id, **body},
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                if r.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)


@worker("io", concurrency=2)
async def io(task: Task) -> dict[str, Any]:
    if task.node_id == "fetch":
        return {"pages": 3}
    if task.node_id == "search":
        return {"hits": 7}
    if task.node_id == "slow":
        if task.attempt == 1:
            await asyncio.sleep(SLOW_FIRST_ATTEMPT_SECONDS)
        return {"slow": f"attempt {task.attempt}"}
    raise TaskFailed(f"io has no node {task.node_id}")


@worker("llm", concurrency=2)
async def llm(task: Task) -> dict[str, Any]:
    if task.node_id == "flaky":
        if task.attempt == 1:
            raise TaskFailed("the model provider answered 503")
        return {"draft": f"draft from {task.input['pages']} pages"}
    if task.node_id == "join":
        return {"joined": [task.input["draft"], task.input["slow"]]}
    if task.node_id == "summarise":
        await telemetry(task, {"type": "thought", "text": "summarise the draft"})
        await telemetry(
            task,
            {
                "type": "llm_call",
                "model": "model-a",
                "input_tokens": 120,
                "output_tokens": 30,
                "cost_usd": 0.002,
                "duration_ms": 40,
                "prompt_preview": "Summarise: ...",
            },
        )
        await telemetry(task, {"type": "tool_call", "tool": "search", "arguments": {"q": "x"}, "duration_ms": 5})
        return {"summary": "three pages, seven hits"}
    if task.node_id == "apologise":
        return {"apology": "nothing found"}
    raise TaskFailed(f"llm has no node {task.node_id}")


if __name__ == "__main__":
    # Only Quipu's URL and a key: the NATS credentials come from Quipu (tenant from the key).
    run(io, llm, quipu_url=API_URL, api_key=API_KEY, name=NAME, heartbeat_seconds=0.5, report_timeout=120)
