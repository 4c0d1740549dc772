"""What every command starts from: the settings (environment, then flags) and runtime.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from quipu.cli.options import SETTINGS_OPTIONS
from quipu.config import Settings
from quipu.wiring import Wiring


def settings(args: argparse.Namespace) -> Settings:
    """``Settings`` from the environment, with the flags given on the command line on top."""
    s = Settings()
    for name in SETTINGS_OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            setattr(s, name, Path(value) if name == "data_dir" else value)
    return s


def runtime(s: Settings) -> dict[str, Any]:
    """What a running ``quipu up`` wrote down: URLs, the dev key, NATS credentials."""
    path = s.data_dir / "runtime.json"
    return json.loads(path.read_text()) if path.exists() else {}


def wiring(s: Settings) -> Wiring:
    if not s.database_url or not s.nats_url:
        sys.exit("set QUIPU_DATABASE_URL and QUIPU_NATS_URL (or use 'quipu up' for the embedded default)")
    return Wiring.from_settings(s, s.database_url, s.nats_url)


def database_url(s: Settings) -> str:
    if not s.database_url:
        sys.exit("no database: pass --database-url, set QUIPU_DATABASE_URL or start 'quipu up' first")
    return s.database_url
