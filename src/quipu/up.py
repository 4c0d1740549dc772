"""``quipu up``: everything in one process, on embedded Postgres and NATS by default."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import structlog

from bus.nats_auth import NatsAuthority
from bus.runtime import NatsEndpoint
from commands.access import AccessService, issue_bootstrap_key
from quipu.config import Settings
from quipu.embedded import EmbeddedNats, EmbeddedNatsCluster, EmbeddedPostgres
from quipu.embedded_extra import require_embedded
from quipu.ports import bind_api, bound_port, http_url
from quipu.private_files import write_private
from quipu.serve import serve
from quipu.wiring import Wiring, build_store

log = structlog.get_logger(__name__)
DEV_TENANT = "default"


@dataclass(frozen=True)
class Infrastructure:
    database_url: str
    nats: NatsEndpoint | str  # with the operator's credentials when embedded
    nats_authority: NatsAuthority | None  # the embedded account's signing key
    nats_credentials_file: Path | None  # the operator's .creds, for local tools
    embedded: bool


@contextlib.contextmanager
def infrastructure(settings: Settings) -> Iterator[Infrastructure]:
    """Start only what is not configured: Postgres and NATS, each with authentication."""
    require_embedded(settings)  # before starting either: a missing wheel is one clear error
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pg = None
    nats: EmbeddedNats | EmbeddedNatsCluster | None = None
    try:
        database_url = settings.database_url
        if not database_url:
            pg = EmbeddedPostgres(settings.data_dir / "postgres")
            pg.start()
            database_url = pg.create_database("quipu")
        if settings.nats_url:
            yield Infrastructure(database_url, settings.nats_url, None, settings.nats_creds, pg is not None)
            return
        nats = _embedded_nats(settings)
        nats.start()
        yield Infrastructure(database_url, nats.endpoint, nats.authority, nats.credentials_path, True)
    finally:
        if nats is not None:
            nats.stop()
        if pg is not None:
            pg.stop()


def _embedded_nats(settings: Settings) -> EmbeddedNats | EmbeddedNatsCluster:
    """One nats-server, or with ``--nats-cluster N`` a local cluster of N (for development and
    fault tests: every node on this box, so it survives a process crash, not a box crash)."""
    if settings.nats_cluster <= 1:
        return EmbeddedNats(settings.data_dir / "nats")
    if "QUIPU_NATS_REPLICAS" not in os.environ:
        # A cluster whose streams live on one node would not survive that node's loss.
        settings.nats_replicas = min(settings.nats_cluster, 3)
    return EmbeddedNatsCluster(settings.data_dir / "nats-cluster", size=settings.nats_cluster)


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
    write_private(path, secret + "\n")
    return secret


def runtime_info(
    *,
    api_base: str,
    database_url: str,
    nats_url: str,
    api_key: str,
    embedded: bool,
    nats_credentials: Path | None = None,
) -> dict[str, Any]:
    """What runtime.json holds: the one place its fields are put together."""
    return {
        "api_url": f"{api_base}/api/v1",
        "docs_url": f"{api_base}/docs",
        "ui_url": f"{api_base}/ui",  # the web explorer (sign in with api_key)
        "database_url": database_url,
        "nats_url": nats_url,
        # The operator's credentials (a .creds file, 0600): `quipu events tail`, `nats --creds`.
        "nats_credentials": str(nats_credentials) if nats_credentials else None,
        "api_key": api_key,
        "tenant": DEV_TENANT,
        "embedded": embedded,
        "pid": os.getpid(),
    }


def write_runtime(path: Path, runtime: dict[str, Any]) -> None:
    """Write runtime.json 0600 from the first byte (it holds credentials), atomically."""
    write_private(path, json.dumps(runtime, indent=2) + "\n")


def remove_runtime(path: Path, *, only_if_dead: bool = False) -> None:
    """Remove runtime.json if it is ours, or (``only_if_dead``) left by a process that is gone."""
    try:
        pid = json.loads(path.read_text()).get("pid")
    except (FileNotFoundError, ValueError):
        return
    if pid == os.getpid() or (only_if_dead and not (isinstance(pid, int) and psutil.pid_exists(pid))):
        path.unlink(missing_ok=True)


def run_up(settings: Settings) -> None:
    # Bind first: a taken port must fail before anything is started or announced.
    sock = bind_api(settings.host, settings.port)
    api_base = http_url(settings.host, bound_port(sock))
    runtime_file = settings.data_dir / "runtime.json"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    remove_runtime(runtime_file, only_if_dead=True)  # a crashed run's file points at nothing
    try:
        with infrastructure(settings) as infra:
            database_url, nats_url = infra.database_url, str(infra.nats)
            key = dev_key(database_url, settings.data_dir)
            runtime = runtime_info(
                api_base=api_base,
                database_url=database_url,
                nats_url=nats_url,
                api_key=key,
                embedded=infra.embedded,
                nats_credentials=infra.nats_credentials_file,
            )

            def announce() -> None:
                write_runtime(runtime_file, runtime)
                print(
                    "Quipu is up\n"
                    f"  API       {runtime['api_url']}\n"
                    f"  OpenAPI   {runtime['docs_url']}\n"
                    f"  Explorer  {runtime['ui_url']}   (sign in with the API key below)\n"
                    f"  Postgres  {database_url}\n"
                    f"  NATS      {nats_url}\n"
                    f"  API key   {key}   (tenant '{DEV_TENANT}', scopes read,write,admin)\n"
                    f"  written to {runtime_file}; Ctrl-C stops everything",
                    flush=True,
                )

            wiring = Wiring.from_settings(settings, database_url, infra.nats, infra.nats_authority)
            asyncio.run(serve(wiring, api_socket=sock, on_ready=announce))
    finally:
        remove_runtime(runtime_file)
        sock.close()
