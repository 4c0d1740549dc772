"""The ``quipu`` command line (``quipu --help``)."""

from __future__ import annotations

import os
import sys

from quipu.cli.common import runtime, settings
from quipu.cli.options import with_projector_run
from quipu.cli.parser import build_parser
from quipu.logging import configure_logging


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(with_projector_run(sys.argv[1:] if argv is None else list(argv)))
    s = settings(args)
    configure_logging(s.log_format, s.log_level)
    if args.command != "up" and not os.environ.get("QUIPU_DATABASE_URL") and not args.database_url:
        # A `quipu up` on this data directory tells the other commands where things are.
        found = runtime(s)
        if found:
            args.database_url = found.get("database_url")
            args.nats_url = args.nats_url or found.get("nats_url")
    args.func(args)
