"""The ``quipu`` command tree: every command and option, with help."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from uuid import UUID

from projections.registry import PROJECTIONS
from quipu.cli import admin, roles
from quipu.cli.migrate import cmd_migrate
from quipu.cli.options import common_options, option, package_version
from quipu.progress import DEFAULT_INTERVAL

HEALTH_PORT_HELP = "port of /health, /ready and /metrics, on --host"
HEALTH_PORT_DEFAULT = "0: a free port, logged as health_listening"


class Choices(tuple[str, ...]):
    """Projection names for ``NAME...``: argparse (before Python 3.12) checks an empty ``*`` list
    against the choices as if it were one value, so the empty list must count as a choice."""

    def __new__(cls, names: Iterable[str]) -> Choices:
        return super().__new__(cls, sorted(names))

    def __contains__(self, item: object) -> bool:
        return item == [] or super().__contains__(item)


def _host(parser: argparse.ArgumentParser, what: str) -> None:
    option(parser, "--host", metavar="ADDRESS", help=f"address {what} listens on", default_text="127.0.0.1")


def _health_port(parser: argparse.ArgumentParser) -> None:
    option(parser, "--health-port", type=int, metavar="PORT", help=HEALTH_PORT_HELP, default_text=HEALTH_PORT_DEFAULT)


def _sub(
    subs: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    help: str,
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subs.add_parser(name, help=help, description=help, parents=[common])
    return parser


def _roles(subs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    up = _sub(subs, "up", "start everything; embedded Postgres and NATS unless their URLs are set", common)
    _host(up, "the API")
    option(
        up,
        "--port",
        type=int,
        help="API port; a port given and taken is an error",
        default_text="8000 when free, else a free port",
    )
    option(
        up,
        "--nats-cluster",
        type=int,
        metavar="N",
        help="run N embedded nats-servers as one JetStream cluster (3 survives the loss of one); "
        "stream replicas default to min(N, 3)",
        default_text="one server, no cluster",
    )
    up.set_defaults(func=roles.cmd_up)

    api = _sub(subs, "api", "run the HTTP API only", common)
    _host(api, "the API")
    option(api, "--port", type=int, help="API port; a port given and taken is an error", default_text="8000")
    api.set_defaults(func=roles.cmd_api)

    relay = _sub(subs, "relay", "run the relay only: publishes the event log to NATS, in order", common)
    _host(relay, "the health endpoint")
    _health_port(relay)
    relay.set_defaults(func=roles.cmd_relay)

    names = Choices(PROJECTIONS)
    projector = _sub(subs, "projector", "run projectors, or rebuild a read model", common)
    projector_subs = projector.add_subparsers(dest="projector_command", required=True, metavar="COMMAND")
    run = _sub(
        projector_subs,
        "run",
        "run projectors (all, or the NAMEs), the task dispatcher and the timer runner "
        "('quipu projector [NAME...]' does the same)",
        common,
    )
    run.add_argument("names", nargs="*", choices=names, metavar="NAME", help=f"a projection: {', '.join(names)}")
    _host(run, "the health endpoint")
    _health_port(run)
    run.set_defaults(func=roles.cmd_projector_run)
    rebuild = _sub(
        projector_subs, "rebuild", "rebuild a read model from the log into fresh tables and swap them in", common
    )
    rebuild.add_argument("name", choices=names, metavar="NAME", help=f"the projection: {', '.join(names)}")
    option(
        rebuild,
        "--progress-interval",
        type=float,
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help="when stderr is not a terminal: seconds between progress log lines (a terminal gets a bar)",
    )
    rebuild.set_defaults(func=roles.cmd_projector_rebuild)


def _admin(subs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    status = _sub(
        subs, "status", "projections' positions, lag and dead letters, and the relay's unpublishable events", common
    )
    option(status, "--api-url", metavar="URL", help="Quipu's URL", default_text="runtime.json's api_url")
    option(status, "--api-key", metavar="KEY", help="an admin API key", default_text="runtime.json's dev key")
    option(status, "--json", action="store_true", help="print the API's answer as JSON")
    status.set_defaults(func=admin.cmd_status)

    keys = _sub(subs, "keys", "manage API keys (straight in Postgres: no API key needed)", common)
    keys_subs = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = _sub(keys_subs, "create", "issue a key and print it (shown once)", common)
    option(create, "--tenant", required=True, help="the tenant the key acts for")
    option(
        create,
        "--scopes",
        default="read,write",
        help="comma-separated scopes: read, write, admin, worker, operator (every tenant)",
    )
    option(create, "--name", default="cli", help="a name to recognise the key by")
    listing = _sub(keys_subs, "list", "a tenant's keys, one JSON object per line (never the secret)", common)
    option(listing, "--tenant", required=True, help="the tenant whose keys to list")
    revoke = _sub(keys_subs, "revoke", "revoke a key (not the tenant's last admin key)", common)
    option(revoke, "--tenant", required=True, help="the key's tenant")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id, as 'keys list' prints it")
    keys.set_defaults(func=admin.cmd_keys)

    events = _sub(subs, "events", "live events from NATS", common)
    events_subs = events.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    tail = _sub(events_subs, "tail", "print events as they are published", common)
    option(tail, "--tenant", help="only this tenant's events", default_text="every tenant")
    option(tail, "--kind", help="only events of this kind, e.g. workflow.created", default_text="every kind")
    option(
        tail,
        "--limit",
        type=int,
        default=0,
        metavar="N",
        help="stop after N events",
        default_text="0: run until Ctrl-C",
    )
    tail.set_defaults(func=admin.cmd_events_tail)

    replay = _sub(subs, "replay", "print an execution's events in order, from Postgres, optionally paced", common)
    replay.add_argument("execution", type=UUID, metavar="EXECUTION", help="the execution's id")
    option(
        replay,
        "--from",
        dest="start",
        metavar="EVENT",
        help="first event: event id, version or ISO timestamp",
        default_text="the first",
    )
    option(
        replay,
        "--to",
        dest="end",
        metavar="EVENT",
        help="last event: event id, version or ISO timestamp",
        default_text="the last",
    )
    option(
        replay,
        "--pace",
        type=float,
        metavar="FACTOR",
        default=0.0,
        help="1: as recorded, 10: ten times faster",
        default_text="0: no delays",
    )
    option(replay, "--json", action="store_true", help="one JSON envelope per line (as the API's NDJSON)")
    replay.set_defaults(func=admin.cmd_replay)

    migrate = _sub(
        subs, "migrate", "apply the write side's pending schema migrations (every role also does at start)", common
    )
    option(migrate, "--status", action="store_true", help="list applied and pending migrations, change nothing")
    migrate.set_defaults(func=cmd_migrate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quipu",
        description="Event-sourced flight recorder and control plane for AI-agent workflows and agent memory.",
        epilog="Every option falls back to the environment variable its help names. "
        "'quipu COMMAND --help' describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    common_options(parser, top=True)
    common = argparse.ArgumentParser(add_help=False)
    common_options(common, top=False)
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _roles(subs, common)
    _admin(subs, common)
    return parser
