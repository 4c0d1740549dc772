"""One Postgres URL for every connection, multi-host and fail-over settings included.

Quipu's own pools hand the URL to libpq as it is. eventsourcing's pool takes only host,
port, database, user and password, so the URL is split: those five (``host`` and ``port``
may be comma-separated lists, one entry per server) and every other libpq parameter -
``target_session_attrs=read-write`` above all, which makes libpq skip a standby and find
the primary after a fail-over - that the event store adds to its pool's connection
settings (``EventStore``). A URL such as
``postgresql://quipu:pw@pg-1:5432,pg-2:5432/quipu?target_session_attrs=read-write``
therefore means the same to both.
"""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo

LIBRARY_PARAMS = ("host", "port", "dbname", "user", "password")
EXTRA_PARAMS_KEY = "LIBPQ_PARAMS"
"""The event store's env key carrying the other parameters, as a libpq conninfo string."""


def split_url(database_url: str) -> tuple[dict[str, str], str]:
    """(the five settings eventsourcing takes, a conninfo string of every other parameter)."""
    params = {k: str(v) for k, v in conninfo_to_dict(database_url).items() if v is not None}
    library = {k: params.pop(k) for k in LIBRARY_PARAMS if k in params}
    return library, make_conninfo("", **params)


def extra_params(conninfo: str) -> dict[str, str]:
    """The parameters ``split_url`` set aside, back as a dict (empty for '')."""
    return {k: str(v) for k, v in conninfo_to_dict(conninfo).items() if v is not None}
