"""``postmaster.pid`` and finding the processes of one Postgres cluster."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["PidFile", "is_server_process", "read_pidfile", "server_processes"]


@dataclass(frozen=True)
class PidFile:
    """The fields of ``postmaster.pid`` we use (layout: src/include/utils/pidfile.h)."""

    pid: int | None
    port: int | None
    listen_address: str
    status: str


def read_pidfile(pgdata: Path) -> PidFile | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None

    def field(index: int) -> str:
        # The file is written incrementally during startup and may be truncated after a
        # crash, so every field is optional.
        return lines[index].strip() if len(lines) > index else ""

    pid, port = field(0), field(3)
    return PidFile(
        pid=int(pid) if pid.isdigit() else None,
        port=int(port) if port.isdigit() else None,
        listen_address=field(5),
        status=field(7),
    )


def is_server_process(proc: psutil.Process, pgdata: Path) -> bool:
    """Whether ``proc`` is a live postgres process (postmaster or child) serving ``pgdata``."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return False
        # Every Postgres process chdirs into its data directory, so cwd identifies the cluster
        # without parsing the command line (which backends rewrite for `ps`).
        return os.path.samefile(proc.cwd(), pgdata)
    except (psutil.Error, OSError):
        return False


def server_processes(pgdata: Path) -> list[psutil.Process]:
    return [proc for proc in psutil.process_iter() if is_server_process(proc, pgdata)]
