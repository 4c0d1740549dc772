"""The ``quipu`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any
from uuid import UUID

from bus.runtime import NatsEndpoint
from bus.subjects import Subjects
from quipu.config import Settings
from quipu.logging import configure_logging
from quipu.wiring import Wiring, build_store


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings()
    for name in ("data_dir", "host", "port", "health_port", "database_url", "nats_url"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(s, name, Path(value) if name == "data_dir" else value)
    return s


def _wiring(s: Settings) -> Wiring:
    if not s.database_url or not s.nats_url:
        sys.exit("set QUIPU_DATABASE_URL and QUIPU_NATS_URL (or use 'quipu up' for the embedded default)")
    return Wiring.from_settings(s, s.database_url, s.nats_url)


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
    from quipu.ports import PortTaken
    from quipu.supervise import RoleFailed
    from quipu.up import run_up

    try:
        run_up(_settings(args))
    except PortTaken as taken:
        sys.exit(f"quipu: {taken}; pass another --port or QUIPU_PORT, or set neither to use a free port")
    except RoleFailed as failure:
        sys.exit(f"quipu: {failure}; stopped")


def cmd_api(args: argparse.Namespace) -> None:
    from quipu.ports import DEFAULT_API_PORT
    from quipu.serve import serve

    s = _settings(args)
    wiring = _wiring(s)
    sock = _bind(s.host, DEFAULT_API_PORT if s.port is None else s.port, "--port (or QUIPU_PORT)")
    _run_roles(serve(wiring, relay=False, run_projectors=False, api_socket=sock))


def cmd_relay(args: argparse.Namespace) -> None:
    from quipu.serve import serve

    s = _settings(args)
    wiring = _wiring(s)
    health = _bind(s.host, s.health_port, "--health-port (or QUIPU_HEALTH_PORT)")
    _run_roles(serve(wiring, api=False, run_projectors=False, health_socket=health))


def cmd_projector(args: argparse.Namespace) -> None:
    from quipu.serve import serve

    s = _settings(args)
    names = args.names or None
    if names and names[0] == "rebuild":
        from quipu.rebuild import run_rebuild

        if len(names) != 2:
            sys.exit("usage: quipu projector rebuild NAME")
        run_rebuild(_wiring(s), names[1])
        return
    wiring = _wiring(s)
    health = _bind(s.host, s.health_port, "--health-port (or QUIPU_HEALTH_PORT)")
    _run_roles(serve(wiring, api=False, relay=False, projectors=names, health_socket=health))


def cmd_status(args: argparse.Namespace) -> None:
    from quipu.status import StatusError, fetch_status, render

    runtime = _runtime(_settings(args))
    api_url = args.api_url or os.environ.get("QUIPU_API_URL") or runtime.get("api_url")
    api_key = args.api_key or os.environ.get("QUIPU_API_KEY") or runtime.get("api_key")
    if not api_url or not api_key:
        sys.exit("quipu: no API to ask: start 'quipu up', or pass --api-url and --api-key (an admin key)")
    try:
        document = fetch_status(api_url, api_key)
    except StatusError as error:
        sys.exit(f"quipu: {error}")
    print(json.dumps(document, indent=2) if args.json else render(document))


def cmd_keys(args: argparse.Namespace) -> None:
    from commands.access import AccessService, issue_bootstrap_key
    from domain.aggregate import CommandContext

    s = _settings(args)
    store = build_store(_wiring(s).database_url, 2)
    try:
        if args.keys_command == "create":
            scopes = [x.strip() for x in args.scopes.split(",") if x.strip()]
            print(issue_bootstrap_key(store, args.tenant, scopes, args.name))
        elif args.keys_command == "list":
            for key in AccessService(store).list(args.tenant):
                print(
                    json.dumps(
                        {
                            "id": str(key.id),
                            "name": key.name,
                            "scopes": key.scopes,
                            "prefix": key.key_prefix,
                            "revoked": key.revoked,
                        }
                    )
                )
        elif args.keys_command == "revoke":
            from uuid import UUID

            from domain.errors import DomainError

            try:
                AccessService(store).revoke(CommandContext(args.tenant, "cli"), UUID(args.key_id))
            except (DomainError, ValueError) as refused:  # the last admin key, an unknown or malformed id
                sys.exit(f"quipu: not revoked: {refused}")
            print("revoked")
    finally:
        store.close()


def cmd_events(args: argparse.Namespace) -> None:
    from quipu.tail import tail

    s = _settings(args)
    runtime = _runtime(s)
    nats_url = s.nats_url or runtime.get("nats_url")
    if not nats_url:
        sys.exit("no NATS: set QUIPU_NATS_URL or start 'quipu up' first")
    creds_file = s.nats_creds or (Path(runtime["nats_credentials"]) if runtime.get("nats_credentials") else None)
    where = NatsEndpoint(nats_url, creds_file.read_text() if creds_file else None)
    asyncio.run(tail(where, Subjects(s.subject_prefix), tenant=args.tenant, kind=args.kind, limit=args.limit))


def cmd_replay(args: argparse.Namespace) -> None:
    from quipu.replay import run_replay

    s = _settings(args)
    if not s.database_url:
        sys.exit("no database: pass --database-url, set QUIPU_DATABASE_URL or start 'quipu up' first")
    run_replay(s.database_url, args.execution, start=args.start, end=args.end, pace=args.pace, as_json=args.json)


def _runtime(s: Settings) -> dict[str, Any]:
    path = s.data_dir / "runtime.json"
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="quipu", description="Event-sourced flight recorder for agent workflows")
    parser.add_argument("--data-dir", help="where embedded Postgres/NATS keep data (default: ~/.local/share/quipu)")
    parser.add_argument("--database-url", help="Postgres URL (default: $QUIPU_DATABASE_URL)")
    parser.add_argument("--nats-url", help="NATS URL (default: $QUIPU_NATS_URL)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start everything; embedded Postgres and NATS unless URLs are set")
    up.add_argument("--host", help="address the API listens on (default: $QUIPU_HOST or 127.0.0.1)")
    up.add_argument(
        "--port",
        type=int,
        help="API port (default: $QUIPU_PORT; if neither is set, 8000 when free, else a free port); "
        "a port given here that is taken is an error",
    )
    up.set_defaults(func=cmd_up)

    api = sub.add_parser("api", help="run the HTTP API only")
    api.add_argument("--host", help="address to listen on (default: $QUIPU_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default: $QUIPU_PORT or 8000); taken is an error")
    api.set_defaults(func=cmd_api)

    health_help = (
        "port for /health, /ready and /metrics on $QUIPU_HOST (default: $QUIPU_HEALTH_PORT or 0 = a free "
        "port, logged as health_listening)"
    )
    relay = sub.add_parser("relay", help="run the notification-log relay only")
    relay.add_argument("--health-port", type=int, help=health_help)
    relay.set_defaults(func=cmd_relay)

    proj = sub.add_parser("projector", help="run projectors (all, or NAMEs); 'projector rebuild NAME' rebuilds one")
    proj.add_argument("names", nargs="*")
    proj.add_argument("--health-port", type=int, help=health_help)
    proj.set_defaults(func=cmd_projector)

    status = sub.add_parser(
        "status", help="projections' positions, lag and dead letters, and the relay's unpublishable events"
    )
    status.add_argument("--api-url", help="Quipu's URL (default: $QUIPU_API_URL, else runtime.json)")
    status.add_argument("--api-key", help="an admin API key (default: $QUIPU_API_KEY, else runtime.json)")
    status.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    status.set_defaults(func=cmd_status)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", default="read,write")
    create.add_argument("--name", default="cli")
    lst = keys_sub.add_parser("list")
    lst.add_argument("--tenant", required=True)
    rev = keys_sub.add_parser("revoke")
    rev.add_argument("--tenant", required=True)
    rev.add_argument("key_id")
    keys.set_defaults(func=cmd_keys)

    events = sub.add_parser("events", help="live events")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    tail_p = events_sub.add_parser("tail", help="print events as they are published")
    tail_p.add_argument("--tenant")
    tail_p.add_argument("--kind")
    tail_p.add_argument("--limit", type=int, default=0, help="stop after N events (0: run until Ctrl-C)")
    events.set_defaults(func=cmd_events)

    replay = sub.add_parser("replay", help="print an execution's events in order, from Postgres, optionally paced")
    replay.add_argument("execution", type=UUID, help="execution id")
    replay.add_argument("--from", dest="start", help="first event: event id, version or ISO timestamp")
    replay.add_argument("--to", dest="end", help="last event: event id, version or ISO timestamp")
    replay.add_argument("--pace", type=float, default=0.0, help="1 = as recorded, 10 = ten times faster, 0 = no delays")
    replay.add_argument("--json", action="store_true", help="one JSON envelope per line (as the API's NDJSON)")
    replay.add_argument("--database-url", default=argparse.SUPPRESS, help="Postgres URL")
    replay.set_defaults(func=cmd_replay)

    args = parser.parse_args(argv)
    s = _settings(args)
    configure_logging(s.log_format, s.log_level)
    if args.command != "up" and not os.environ.get("QUIPU_DATABASE_URL") and not args.database_url:
        runtime = _runtime(s)
        if runtime:
            args.database_url = args.database_url or runtime.get("database_url")
            args.nats_url = args.nats_url or runtime.get("nats_url")
    args.func(args)


if __name__ == "__main__":
    main()
