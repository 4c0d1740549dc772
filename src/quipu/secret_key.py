"""The server key callback signing secrets are derived from (see domain.webhook_secrets).

``QUIPU_SECRET_KEY`` (at least 32 characters) when set: every process of one deployment must
see the same value, so set it wherever the API and the deliverer run on different machines.
Otherwise ``<data_dir>/secret.key``: 32 random bytes (hex), created mode 0600 on first use and
kept, so the secrets already issued stay valid across restarts. Losing or changing the key
invalidates every issued secret (services register again to get new ones).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from domain.webhook_secrets import MIN_SERVER_KEY_BYTES
from quipu.private_files import write_private

ENV_KEY = "QUIPU_SECRET_KEY"
FILE_NAME = "secret.key"


def load_server_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured key, else the data directory's key file (made on first use)."""
    value = configured if configured is not None else os.environ.get(ENV_KEY)
    if value:
        key = value.encode()
        if len(key) < MIN_SERVER_KEY_BYTES:
            raise ValueError(f"{ENV_KEY} must be at least {MIN_SERVER_KEY_BYTES} characters")
        return key
    path = data_dir / FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{FILE_NAME}.{os.getpid()}"
        write_private(draft, secrets.token_hex(32))
        try:  # a hard link never replaces: of two processes starting at once, the first key wins
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink(missing_ok=True)
    return path.read_text().strip().encode()
