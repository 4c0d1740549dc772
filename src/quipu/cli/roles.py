"""The long-lived commands: ``up``, ``api``, ``relay``, ``projector run``; and ``projector rebuild``."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Coroutine
from typing import Any

from quipu.cli.common import database_url, settings, wiring


def _run_roles(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived process; exit non-zero when one of its roles died."""
    from quipu.supervise import RoleFailed

    try:
        asyncio.run(main)
    except RoleFailed as failure:
        sys.exit(f"quipu: {failure}; stopped")


def _bind(host: str, port: int, what: str) -> socket.socket:
    from quipu.ports import PortTaken, bind_tcp

    try:
        return bind_tcp(host, port)
    except PortTaken as taken:
        sys.exit(f"quipu: {taken}; choose another {what}")
    except OSError as error:
        sys.exit(f"quipu: cannot listen on {host}:{port}: {error.strerror}")


def cmd_up(args: argparse.Namespace) -> None:
    from quipu.embedded_extra import EmbeddedExtraMissing
    from quipu.ports import PortTaken
    from quipu.supervise import RoleFailed
    from quipu.up import run_up

    try:
        run_up(settings(args))
    except PortTaken as taken:
        sys.exit(f"quipu: {taken}; pass another --port or QUIPU_PORT, or set neither to use a free port")
    except RoleFailed as failure:
        sys.exit(f"quipu: {failure}; stopped")
    except EmbeddedExtraMissing as missing:
        sys.exit(f"quipu: {missing}")


def cmd_api(args: argparse.Namespace) -> None:
    from quipu.ports import DEFAULT_API_PORT
    from quipu.serve import serve

    s = settings(args)
    w = wiring(s)
    sock = _bind(s.host, DEFAULT_API_PORT if s.port is None else s.port, "--port (or QUIPU_PORT)")
    _run_roles(serve(w, relay=False, run_projectors=False, api_socket=sock))


def cmd_relay(args: argparse.Namespace) -> None:
    from quipu.serve import serve

    s = settings(args)
    w = wiring(s)
    health = _bind(s.host, s.health_port, "--health-port (or QUIPU_HEALTH_PORT)")
    _run_roles(serve(w, api=False, run_projectors=False, health_socket=health))


def cmd_projector_run(args: argparse.Namespace) -> None:
    from quipu.serve import serve

    s = settings(args)
    w = wiring(s)
    health = _bind(s.host, s.health_port, "--health-port (or QUIPU_HEALTH_PORT)")
    _run_roles(serve(w, api=False, relay=False, projectors=args.names or None, health_socket=health))


def cmd_projector_rebuild(args: argparse.Namespace) -> None:
    from quipu.rebuild import run_rebuild

    run_rebuild(database_url(settings(args)), args.name, interval=args.progress_interval)
