"""Supervising a process's role tasks: the first one to die stops the process, non-zero.

A role (relay, projector, dispatcher, timer runner, report responder, API server) retries
outages by itself; when it still ends with an exception, the process must not keep running
and looking healthy without it. It stops the other roles cleanly and exits non-zero, so a
supervisor (systemd, Kubernetes, compose) restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: How long a role gets to finish after ``stop`` before it is cancelled.
STOP_TIMEOUT_SECONDS = 10.0


class RoleFailed(RuntimeError):
    """One or more role tasks died; the process exits non-zero."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"role task failed: {', '.join(names)}")
        self.names = names


class Roles:
    """The role tasks of one process, all sharing one ``stop`` event."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self.tasks: list[asyncio.Task[None]] = []
        self.failed: list[str] = []

    def start(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._ended)
        self.tasks.append(task)
        return task

    def dead(self) -> list[str]:
        """Names of roles that are no longer running."""
        return [task.get_name() for task in self.tasks if task.done()]

    def _ended(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if self._stop.is_set():
            # Asked to stop: ending is expected, an error on the way out is worth a line only.
            if error is not None:
                log.warning("role_task_error_on_stop", task=task.get_name(), error=repr(error))
            return
        reason = repr(error) if error is not None else ("cancelled" if task.cancelled() else "returned")
        log.error("role_task_failed", task=task.get_name(), error=reason, exc_info=error)
        self.failed.append(task.get_name())
        self._stop.set()

    async def wait_stopped(self) -> None:
        """Wait for every role after ``stop`` was set; cancel those that overstay."""
        for task in self.tasks:
            if task.done():
                continue
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("role_task_stop_timeout", task=task.get_name(), seconds=STOP_TIMEOUT_SECONDS)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            except asyncio.CancelledError:
                if not task.done():
                    raise  # we are being cancelled ourselves, not the role
            except Exception:
                pass  # logged by _ended

    def raise_if_failed(self) -> None:
        if self.failed:
            raise RoleFailed(self.failed)
