"""The operator's commands: ``status``, ``keys``, ``events tail``, ``replay``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from bus.runtime import NatsEndpoint
from bus.subjects import Subjects
from quipu.cli.common import database_url, runtime, settings, wiring
from quipu.wiring import build_store


def status_target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(API URL, admin key): the flags, else the environment, else runtime.json."""
    found = runtime(settings(args))
    api_url = args.api_url or os.environ.get("QUIPU_API_URL") or found.get("api_url")
    api_key = args.api_key or os.environ.get("QUIPU_API_KEY") or found.get("api_key")
    return api_url, api_key


def cmd_status(args: argparse.Namespace) -> None:
    from quipu.status import StatusError, fetch_status, render

    api_url, api_key = status_target(args)
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

    store = build_store(wiring(settings(args)).database_url, 2)
    try:
        if args.keys_command == "create":
            scopes = [x.strip() for x in args.scopes.split(",") if x.strip()]
            print(issue_bootstrap_key(store, args.tenant, scopes, args.name))
        elif args.keys_command == "list":
            for key in AccessService(store).list(args.tenant):
                row = {
                    "id": str(key.id),
                    "name": key.name,
                    "scopes": key.scopes,
                    "prefix": key.key_prefix,
                    "revoked": key.revoked,
                }
                print(json.dumps(row))
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


def cmd_events_tail(args: argparse.Namespace) -> None:
    from quipu.tail import tail

    s = settings(args)
    found = runtime(s)
    nats_url = s.nats_url or found.get("nats_url")
    if not nats_url:
        sys.exit("no NATS: set QUIPU_NATS_URL or start 'quipu up' first")
    creds_file = s.nats_creds or (Path(found["nats_credentials"]) if found.get("nats_credentials") else None)
    where = NatsEndpoint(nats_url, creds_file.read_text() if creds_file else None)
    asyncio.run(tail(where, Subjects(s.subject_prefix), tenant=args.tenant, kind=args.kind, limit=args.limit))


def cmd_replay(args: argparse.Namespace) -> None:
    from quipu.replay import run_replay

    url = database_url(settings(args))
    run_replay(url, args.execution, start=args.start, end=args.end, pace=args.pace, as_json=args.json)
