"""A real worker process for the browser tests (argv: API_URL API_KEY NAME).

It serves the agent type ``echo``: a node's output is its ``config.output`` (default
``{"<node_id>": "done"}``), after ``config.delay`` seconds (default 0), and the first
``config.fail_attempts`` attempts fail. So a test writes what each node will do in the
workflow definition itself and knows every state in advance.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from quipu_client.worker import Task, TaskFailed, run, worker

API_URL, API_KEY, NAME = sys.argv[1:4]


@worker("echo", concurrency=4)
async def echo(task: Task) -> dict[str, Any]:
    delay = task.config.get("delay", 0)
    if isinstance(delay, int | float) and delay > 0:
        await asyncio.sleep(float(delay))
    fail_attempts = task.config.get("fail_attempts", 0)
    if isinstance(fail_attempts, int) and task.attempt <= fail_attempts:
        raise TaskFailed(f"{task.node_id} fails its attempt {task.attempt} on purpose")
    output = task.config.get("output")
    return dict(output) if isinstance(output, dict) else {task.node_id: "done"}


if __name__ == "__main__":
    run(echo, quipu_url=API_URL, api_key=API_KEY, name=NAME, heartbeat_seconds=0.5, report_timeout=60)
