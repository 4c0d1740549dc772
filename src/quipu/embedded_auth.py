"""The embedded Postgres superuser's password: generated once, kept beside the cluster.

Kept apart from :mod:`quipu.embedded` so the file handling (modes, owners, the pg_hba.conf
rewrite for clusters created with ``trust`` before passwords existed) is small and readable.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

from quipu.private_files import write_private

if TYPE_CHECKING:
    from collections.abc import Iterator

log = structlog.get_logger(__name__)

#: Name of the password file inside the embedded Postgres data dir (next to ``pgdata/``).
PASSWORD_FILE: Final = "password"
#: The authentication method every pg_hba.conf rule of the embedded cluster uses.
AUTH_METHOD: Final = "scram-sha-256"
# A "trust" method field on a rule line (comments are stripped before matching).
_TRUST: Final = re.compile(r"(?<=\s)trust(?=\s|$)")


def load_or_create_password(path: Path) -> str:
    """The password stored at ``path``; a new random one (file mode 0600) if there is none.

    Callers hold the cluster's start lock, so two processes never race to create it.
    """
    with contextlib.suppress(FileNotFoundError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            # Someone loosened it (or a copy kept a umask-derived mode): only we may read it.
            path.chmod(0o600)
            log.warning("embedded_postgres_password_mode_fixed", path=str(path))
        password = path.read_text().strip()
        if password:
            return password
    # URL-safe characters, so the URL is readable; it is percent-quoted anyway.
    password = secrets.token_urlsafe(32)
    write_private(path, password + "\n")  # a crash never leaves an empty or half-written one
    log.info("embedded_postgres_password_created", path=str(path))
    return password


@contextlib.contextmanager
def initdb_pwfile(directory: Path, password: str, owner: tuple[int, int] | None) -> Iterator[Path]:
    """A short-lived copy of the password that ``initdb --pwfile`` can read.

    Under root initdb runs as the service account, which must not read our own password file
    (it stays the Quipu account's, 0600), so it gets a copy it owns, removed right after.
    """
    path = directory / ".initdb-pwfile"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        if owner is not None:
            os.chown(path, *owner)
        yield path
    finally:
        path.unlink(missing_ok=True)


def hba_trusts(text: str) -> bool:
    """Whether any rule of this pg_hba.conf lets clients in without a password."""
    return any(_TRUST.search(" " + line.split("#", 1)[0]) for line in text.splitlines())


def hba_with_passwords(text: str) -> str:
    """``text`` with every ``trust`` rule switched to SCRAM; comments and layout kept."""
    lines = []
    for line in text.splitlines(keepends=True):
        rule, hash_, comment = line.partition("#")
        lines.append(_TRUST.sub(AUTH_METHOD, " " + rule)[1:] + hash_ + comment)
    return "".join(lines)
