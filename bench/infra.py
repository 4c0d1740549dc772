"""Start (or reuse via env) Postgres and NATS; give back URLs and a cleanup."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

from bench.common import log
from bus.nats_auth import NatsAuthority
from bus.runtime import NatsEndpoint


@dataclass
class Infra:
    database_url: str
    nats_url: NatsEndpoint | str  # with operator credentials for the embedded NATS
    nats_authority: NatsAuthority | None = None  # lets each role connect as a user of its own


def _with_db(url: str, name: str) -> str:
    return urlunparse(urlparse(url)._replace(path="/" + name))


@contextlib.contextmanager
def infra() -> Iterator[Infra]:
    db_env = os.environ.get("QUIPU_BENCH_DATABASE_URL")
    nats_env = os.environ.get("QUIPU_BENCH_NATS_URL")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="quipu-bench-")))
        os.chmod(tmp, 0o755)
        if db_env:
            # A fresh database on the given server, so repeated runs do not pile up.
            name = "quipu_bench_" + uuid.uuid4().hex[:10]
            try:
                with psycopg.connect(db_env, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
                database_url = _with_db(db_env, name)

                def _drop() -> None:
                    with psycopg.connect(db_env, autocommit=True) as conn:
                        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]

                stack.callback(_drop)
            except psycopg.Error:
                database_url = db_env
        else:
            from quipu.embedded import EmbeddedPostgres

            log("starting embedded Postgres (default durability settings) ...")
            pg = EmbeddedPostgres(tmp / "pg")
            pg.start()
            stack.callback(pg.stop, mode="fast")
            database_url = pg.create_database("quipu_bench")
        authority = None
        nats_url: NatsEndpoint | str
        if nats_env:
            nats_url = nats_env
        else:
            from quipu.embedded import EmbeddedNats

            log("starting embedded NATS ...")
            nats = EmbeddedNats(tmp / "nats")
            nats.start()
            stack.callback(nats.stop)
            nats_url, authority = nats.endpoint, nats.authority
        yield Infra(database_url, nats_url, authority)
