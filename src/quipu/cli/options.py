"""How the CLI's options are declared: each says what it does, the environment variable it
falls back to, and its default, in its help text (see ``quipu COMMAND --help``)."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from quipu.logging import FORMATS, LEVELS

ENV: dict[str, str] = {
    "data_dir": "QUIPU_DATA_DIR",
    "database_url": "QUIPU_DATABASE_URL",
    "nats_url": "QUIPU_NATS_URL",
    "log_format": "QUIPU_LOG_FORMAT",
    "log_level": "QUIPU_LOG_LEVEL",
    "host": "QUIPU_HOST",
    "port": "QUIPU_PORT",
    "health_port": "QUIPU_HEALTH_PORT",
    "nats_cluster": "QUIPU_NATS_CLUSTER",
    "api_url": "QUIPU_API_URL",
    "api_key": "QUIPU_API_KEY",
}
"""Option (by ``dest``) -> the environment variable used when the option is not given."""

SETTINGS_OPTIONS = (
    "data_dir",
    "database_url",
    "nats_url",
    "log_format",
    "log_level",
    "host",
    "port",
    "health_port",
    "nats_cluster",
)
"""Options that override a field of ``quipu.config.Settings`` (which reads the variable)."""


def package_version() -> str:
    try:
        return version("quipu")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def option(
    parser: argparse._ActionsContainer, *flags: str, help: str, default_text: str | None = None, **kwargs: Any
) -> argparse.Action:
    """``add_argument`` whose help ends with ``[env: VAR; default: ...]``.

    ``default_text`` describes a default the parser cannot show (one that comes from the
    environment, a file, or the command); otherwise a non-empty ``default`` is shown as is.
    """
    action = parser.add_argument(*flags, help=help, **kwargs)
    notes = []
    if action.dest in ENV:
        notes.append(f"env: {ENV[action.dest]}")
    shown = default_text
    if shown is None and action.default not in (None, False, argparse.SUPPRESS, "", [], 0):
        shown = str(action.default)
    if shown is not None:
        notes.append(f"default: {shown}")
    if notes:
        action.help = f"{help} [{'; '.join(notes)}]"
    return action


def common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Where to find Postgres, NATS and the data directory, and how to log.

    Accepted before the command and after it (``quipu --data-dir D up`` and ``quipu up --data-dir
    D``); on subcommands the default is SUPPRESS so that a value given before is kept.
    """
    unset: Any = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("where things are, and logging (also accepted before the command)")
    option(
        group,
        "--data-dir",
        default=unset,
        metavar="DIR",
        help="where the embedded Postgres and NATS keep their data, with runtime.json of a running 'quipu up'",
        default_text="$XDG_DATA_HOME/quipu, else ~/.local/share/quipu",
    )
    option(
        group,
        "--database-url",
        default=unset,
        metavar="URL",
        help="Postgres URL; given to 'quipu up', nothing embedded starts",
        default_text="the one in runtime.json of a running 'quipu up'",
    )
    option(
        group,
        "--nats-url",
        default=unset,
        metavar="URL",
        help="NATS URL (JetStream enabled)",
        default_text="the one in runtime.json of a running 'quipu up'",
    )
    option(
        group,
        "--log-format",
        default=unset,
        choices=FORMATS,
        help="log lines as JSON objects or readable text; auto: JSON unless stderr is a terminal",
        default_text="auto",
    )
    option(
        group,
        "--log-level",
        default=unset,
        choices=LEVELS,
        help="the least severe level logged (libraries log from warning up, unless debug)",
        default_text="info",
    )


GLOBAL_VALUE_OPTIONS = frozenset({"--data-dir", "--database-url", "--nats-url", "--log-format", "--log-level"})
SUBCOMMANDS_OF_PROJECTOR = frozenset({"run", "rebuild", "-h", "--help"})


def with_projector_run(argv: list[str]) -> list[str]:
    """The spellings from before ``projector run`` existed: ``quipu projector [NAME...]`` runs
    projectors, as ``quipu projector run [NAME...]`` does (deployments start it so)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in GLOBAL_VALUE_OPTIONS else 1  # "--opt=value" and flags are one token
    if i >= len(argv) or argv[i] != "projector":
        return argv
    rest = argv[i + 1 :]
    if rest and rest[0] in SUBCOMMANDS_OF_PROJECTOR:
        return argv
    return [*argv[: i + 1], "run", *rest]
