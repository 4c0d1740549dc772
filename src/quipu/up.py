"""``quipu up``: everything in one process, on embedded Postgres and NATS by default."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import structlog

from commands.access import AccessService, issue_bootstrap_key
from quipu.config import Settings
from quipu.embedded import EmbeddedNats, EmbeddedPostgres
from quipu.serve import serve
from quipu.wiring import Wiring, build_store

log = structlog.get_logger(__name__)
DEV_TENANT = "default"


@contextlib.contextmanager
def infrastructure(settings: Settings) -> Iterator[tuple[str, str, bool]]:
    """Yield (database_url, nats_url, embedded). Starts only what is not configured."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pg = nats = None
    try:
        database_url = settings.database_url
        if not database_url:
            pg = EmbeddedPostgres(settings.data_dir / "postgres")
            pg.start()
            database_url = pg.create_database("quipu")
        nats_url = settings.nats_url
        if not nats_url:
            nats = EmbeddedNats(settings.data_dir / "nats")
            nats_url = nats.start()
        yield database_url, nats_url, bool(pg or nats)
    finally:
        if nats is not None:
            nats.stop()
        if pg is not None:
            pg.stop()


def dev_key(database_url: str, data_dir: Path) -> str:
    """A development key for tenant 'default', kept (0600) in the data folder across restarts."""
    path = data_dir / "dev-api-key"
    store = build_store(database_url, 2)
    try:
        if path.exists():
            secret = path.read_text().strip()
            if AccessService(store).authenticate(secret) is not None:
                return secret
        secret = issue_bootstrap_key(store, DEV_TENANT, ["read", "write", "admin"], "development key")
    finally:
        store.close()
    path.write_text(secret + "\n")
    os.chmod(path, 0o600)
    return secret


def run_up(settings: Settings) -> None:
    with infrastructure(settings) as (database_url, nats_url, embedded):
        key = dev_key(database_url, settings.data_dir)
        base = f"http://{settings.host}:{settings.port}"
        runtime: dict[str, Any] = {
            "api_url": f"{base}/api/v1",
            "docs_url": f"{base}/docs",
            "database_url": database_url,
            "nats_url": nats_url,
            "api_key": key,
            "tenant": DEV_TENANT,
            "embedded": embedded,
            "pid": os.getpid(),
        }
        runtime_file = settings.data_dir / "runtime.json"
        runtime_file.write_text(json.dumps(runtime, indent=2) + "\n")
        os.chmod(runtime_file, 0o600)
        print(
            "Quipu is up\n"
            f"  API       {runtime['api_url']}\n"
            f"  OpenAPI   {runtime['docs_url']}\n"
            f"  Postgres  {database_url}\n"
            f"  NATS      {nats_url}\n"
            f"  API key   {key}   (tenant '{DEV_TENANT}', scopes read,write,admin)\n"
            f"  written to {runtime_file}; Ctrl-C stops everything",
            flush=True,
        )
        wiring = Wiring.from_settings(settings, database_url, nats_url)
        asyncio.run(serve(wiring, host=settings.host, port=settings.port))
