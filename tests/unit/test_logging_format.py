"""In JSON mode every line is one JSON object, whoever wrote it: structlog, a library logging
through the standard library (uvicorn, psycopg), a warning, an uncaught exception; with
timestamp, level and logger name, and exceptions as structured tracebacks. Console mode stays
readable. Each case runs in a fresh interpreter: configuring logging is process-wide."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from structlog.testing import capture_logs

from quipu.progress import LogLines

PROGRAM = textwrap.dedent(
    """
    import logging, warnings, structlog
    from quipu.logging import configure_logging

    configure_logging({fmt!r}, "info")
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received: %s", "garbage")
    logging.getLogger("psycopg.pool").info("below the libraries' threshold")
    def connect():
        raise ConnectionRefusedError("connection refused")
    try:
        connect()
    except OSError:
        logging.getLogger("psycopg.pool").exception("error connecting in 'pool-1'")
    try:
        connect()
    except OSError as error:
        secret = "qk_do_not_log_me"
        structlog.get_logger("bus.relay").exception("relay_publish_failed", batch=3)
    structlog.get_logger("api.app").info("http_request", status=201)
    warnings.warn("careful")
    raise RuntimeError("the process dies")
    """
)


def _run(fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM.format(fmt=fmt)], capture_output=True, text=True, timeout=60, check=False
    )


def _frames(line: dict[str, Any]) -> list[dict[str, Any]]:
    (exception,) = line["exception"]
    frames: list[dict[str, Any]] = exception["frames"]
    return frames


def test_json_mode_writes_one_object_per_line_for_every_source() -> None:
    done = _run("json")
    assert done.returncode == 1
    lines = [json.loads(text) for text in done.stderr.splitlines()]  # every line is one JSON object
    for line in lines:
        assert {"event", "level", "logger", "timestamp"} <= line.keys(), line
        assert line["timestamp"].endswith("Z")
    by_event = {line["event"]: line for line in lines}

    uvicorn = by_event["Invalid HTTP request received: garbage"]
    assert (uvicorn["logger"], uvicorn["level"]) == ("uvicorn.error", "warning")
    assert not any(line["logger"] == "psycopg.pool" and line["level"] == "info" for line in lines)

    pool = by_event["error connecting in 'pool-1'"]
    assert (pool["logger"], pool["level"]) == ("psycopg.pool", "error")
    assert pool["exception"][0]["exc_type"] == "ConnectionRefusedError"
    assert [f["name"] for f in _frames(pool)][-1] == "connect"  # frames, not one string

    relay = by_event["relay_publish_failed"]
    assert (relay["logger"], relay["level"], relay["batch"]) == ("bus.relay", "error", 3)
    assert relay["exception"][0]["exc_value"] == "connection refused" and _frames(relay)
    assert "qk_do_not_log_me" not in done.stderr  # locals stay out of tracebacks

    assert by_event["http_request"]["logger"] == "api.app"
    warning = next(line for line in lines if line["logger"] == "py.warnings")
    assert "careful" in warning["event"]
    crash = by_event["uncaught_exception"]
    assert crash["level"] == "critical" and crash["exception"][0]["exc_type"] == "RuntimeError"
    assert "Traceback (most recent call last)" not in done.stderr


def test_console_mode_stays_readable() -> None:
    done = _run("console")
    assert "Invalid HTTP request received: garbage" in done.stderr and "uvicorn.error" in done.stderr
    assert "relay_publish_failed" in done.stderr and "ConnectionRefusedError" in done.stderr
    assert not any(line.lstrip().startswith("{") for line in done.stderr.splitlines())
    assert "qk_do_not_log_me" not in done.stderr


def test_progress_lines_are_periodic_with_a_last_one_at_the_end() -> None:
    now = [0.0]
    lines = LogLines("rebuild_progress", interval=5.0, clock=lambda: now[0], projection="timeline")
    with capture_logs() as logs:
        for done, at in [(10, 0.1), (20, 1.0), (30, 5.2), (40, 6.0), (50, 10.3), (60, 10.4), (100, 10.5)]:
            now[0] = at
            lines(done, 100)
        lines(100, 100)  # told again: already said
    assert [(e["done"], e["percent"]) for e in logs] == [(10, 10.0), (30, 30.0), (50, 50.0), (100, 100.0)]
    assert all(e["event"] == "rebuild_progress" and e["projection"] == "timeline" for e in logs)
    assert logs[-1]["total"] == 100 and logs[-1]["per_second"] == round(100 / 10.5)
