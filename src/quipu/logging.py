"""Logging set-up: one format for structlog's lines and the standard library's.

JSON mode (``QUIPU_LOG_FORMAT=json``, or ``auto`` when stderr is not a terminal) writes one JSON
object per line, each with ``timestamp``, ``level``, ``logger`` and ``event``; an exception is a
structured traceback (``exception``: a list of exceptions, each with its frames), never one string.
Console mode writes readable lines.

structlog's own lines are rendered straight to stderr: no ``LogRecord`` per line, because the
request log is on every request's path. Libraries that log through the standard library
(uvicorn, psycopg, nats, eventsourcing, asyncio) go through structlog's ``ProcessorFormatter``,
which runs the same processors, so both kinds of line look alike.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import Processor

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("auto", "json", "console")


class StderrLogger:
    """structlog's sink: whatever ``sys.stderr`` is at the time of the line.

    Looked up per line (not bound at start) so that a progress bar that redirects stderr, or a
    test that captures it, gets the lines. ``name`` feeds the ``logger`` key.
    """

    _lock = threading.Lock()

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        with self._lock:
            stream = sys.stderr
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*args: Any) -> StderrLogger:
    # structlog.get_logger(__name__) passes the module's name; a bare get_logger() passes nothing.
    return StderrLogger(str(args[0]) if args else "quipu")


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's handler, also writing to the current ``sys.stderr``."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def _shared() -> list[Processor]:
    """What every line gets, before rendering, wherever it comes from."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderers(json_output: bool) -> list[Processor]:
    if not json_output:
        # Readable tracebacks; locals stay out of them (they may hold request bodies, keys or tokens).
        return [
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False))
        ]
    tracebacks = structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))  # as above
    return [tracebacks, structlog.processors.JSONRenderer()]


def _stdlib_level(level: int) -> int:
    """Libraries speak from WARNING up (their INFO is noise: uvicorn's banner, httpx's every
    request), unless the operator asked for DEBUG or for fewer lines than that."""
    return level if level == logging.DEBUG or level > logging.WARNING else logging.WARNING


def json_mode(fmt: str) -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    """Configure structlog and the standard library's root logger; safe to call again."""
    json_output = json_mode(fmt)
    threshold = logging.getLevelNamesMapping()[level.upper()]
    renderers = _renderers(json_output)
    structlog.configure(
        processors=[*_shared(), *renderers],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
    )
    handler = StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_stdlib_level(threshold))
    logging.captureWarnings(True)  # warnings.warn(...) becomes a line like the others
    if json_output:
        sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    """A crash's traceback as one JSON line too, not Python's plain text."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    structlog.get_logger("quipu").critical("uncaught_exception", exc_info=(kind, error, tb))
