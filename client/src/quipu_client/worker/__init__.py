"""The worker helper: serve Quipu's tasks of some agent types from any process.

    from quipu_client.worker import Task, run, worker

    @worker("summarize")
    async def summarize(task: Task) -> dict:
        return {"summary": task.input["text"][:100]}

    run(summarize)  # QUIPU_URL and QUIPU_API_KEY from the environment, or pass them
"""

from quipu_client.wire import Task
from quipu_client.worker.helper import TaskFailed, Worker, run, serve_workers, worker
from quipu_client.worker.login import LoginRefused, WorkerLogin

__all__ = ["LoginRefused", "Task", "TaskFailed", "Worker", "WorkerLogin", "run", "serve_workers", "worker"]
