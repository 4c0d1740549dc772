"""Progress of a long command (``projector rebuild``, ``replay``): a bar on a terminal, log lines
otherwise.

A bar redraws itself with carriage returns, which turn a log file or a CI transcript into one
endless line; so when stderr is not a terminal, progress is a structured log line at most every
``interval`` seconds (and one at the end) instead.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

Report = Callable[[int, int], None]
"""(done, total)."""

DEFAULT_INTERVAL = 5.0

log = structlog.get_logger(__name__)


class LogLines:
    """``progress`` log lines: the first call, then one per ``interval`` seconds, and the last."""

    def __init__(
        self, event: str, interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic, **fields: Any
    ) -> None:
        self.event, self.interval, self.clock, self.fields = event, interval, clock, fields
        self.started = clock()
        self.last: float | None = None
        self.finished = False

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        complete = done >= total
        due = self.last is None or now - self.last >= self.interval
        if self.finished or not (due or complete):
            return
        self.last, self.finished = now, complete
        percent = 100.0 if total <= 0 else round(min(done / total, 1.0) * 100, 1)
        rate = done / max(now - self.started, 1e-6)
        log.info(self.event, **self.fields, done=done, total=total, percent=percent, per_second=round(rate))


class TerminalBar:
    """A rich progress bar on stderr; stdout lines printed meanwhile appear above it."""

    def __init__(self, label: str, stream: TextIO) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            # Redirecting stdout is right only when it shares the terminal; piped, it stays a pipe.
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=True,
        )
        self.task = self.progress.add_task(label, total=None)

    def __call__(self, done: int, total: int) -> None:
        self.progress.update(self.task, completed=done, total=max(total, done))


@contextlib.contextmanager
def progress_for(
    label: str, event: str, *, interval: float = DEFAULT_INTERVAL, stream: TextIO | None = None, **fields: Any
) -> Iterator[Report]:
    """A bar labelled ``label`` on a terminal, else ``event`` log lines carrying ``fields``."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        yield LogLines(event, interval, **fields)
        return
    bar = TerminalBar(label, stream)
    with bar.progress:
        yield bar
