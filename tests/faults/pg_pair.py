"""An embedded Postgres primary with a synchronous streaming standby (the same binaries), for
fail-over tests: the standby is a ``pg_basebackup`` of the primary, every commit waits for it
(``synchronous_standby_names = '*'``), and ``promote`` makes it the primary."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

from quipu.embedded import EmbeddedPostgres
from quipu.embedded.binaries import postgres_bin_dir
from quipu.embedded.pg_account import run, service_account

# SIGKILL loses nothing the OS already holds, so fsync only slows the test down; commits stay
# synchronous (the default), which is what makes an acknowledged command durable on the standby.
_FAST = {"fsync": "off", "full_page_writes": "off"}


@dataclass
class PgPair:
    primary: EmbeddedPostgres
    standby: EmbeddedPostgres
    database: str

    def url(self) -> str:
        """The multi-host URL Quipu is given: the primary first, writes only to a primary."""
        hosts = ",".join(f"127.0.0.1:{pg.port}" for pg in (self.primary, self.standby))
        secret = quote(self.primary.password, safe="")
        return (
            f"postgresql://postgres:{secret}@{hosts}/{self.database}?target_session_attrs=read-write&connect_timeout=2"
        )

    def promote(self) -> None:
        with psycopg.connect(self.standby.url, autocommit=True) as conn:
            conn.execute("SELECT pg_promote(true, 60)")

    def stop(self) -> None:
        for pg in (self.standby, self.primary):
            pg.stop(mode="immediate")


def start_pair(root: Path, database: str = "quipu") -> PgPair:
    primary = EmbeddedPostgres(root / "primary", extra_settings=_FAST)
    primary.start()
    primary.create_database(database)
    standby_dir = root / "standby"
    standby_dir.mkdir(parents=True)
    shutil.copy(primary.password_path, standby_dir / primary.password_path.name)
    account = service_account()
    if account is not None:  # pg_basebackup writes the standby's files as the server's account
        os.chown(standby_dir, account.uid, account.gid)
    rc, output = run(
        [
            str(postgres_bin_dir() / "pg_basebackup"),
            "-D",
            str(standby_dir / "pgdata"),
            "-R",  # standby.signal and primary_conninfo
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            primary.url,
        ],
        account=account,
        timeout=120,
    )
    assert rc == 0, output
    standby = EmbeddedPostgres(standby_dir, extra_settings=_FAST)
    standby.start()
    deadline = time.monotonic() + 60
    with psycopg.connect(primary.url, autocommit=True) as conn:
        # Only now: with no standby yet, every commit (CREATE DATABASE too) would wait forever.
        # ALTER SYSTEM, not a start-up setting, so the standby's copy does not carry it.
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        conn.execute("SELECT pg_reload_conf()")
        while conn.execute("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'").fetchone() is None:
            assert time.monotonic() < deadline, "the standby never became synchronous"
            time.sleep(0.1)
    return PgPair(primary, standby, database)
