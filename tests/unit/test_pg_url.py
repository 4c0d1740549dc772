"""One Postgres URL for eventsourcing's pool and ours (commands.pg_url, commands.store.postgres_env)."""

from __future__ import annotations

from commands.pg_url import EXTRA_PARAMS_KEY, extra_params, split_url
from commands.store import postgres_env


def test_a_multi_host_fail_over_url_keeps_every_host_and_its_session_attrs() -> None:
    url = "postgresql://quipu:p%40ss@pg-1:5432,pg-2:5433/events?target_session_attrs=read-write&sslmode=disable"
    library, others = split_url(url)
    assert library == {
        "host": "pg-1,pg-2",
        "port": "5432,5433",
        "dbname": "events",
        "user": "quipu",
        "password": "p@ss",
    }
    assert extra_params(others) == {"target_session_attrs": "read-write", "sslmode": "disable"}
    env = postgres_env(url)
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_PASSWORD"]) == ("pg-1,pg-2", "5432,5433", "p@ss")
    assert extra_params(env[EXTRA_PARAMS_KEY]) == {"target_session_attrs": "read-write", "sslmode": "disable"}


def test_a_plain_url_means_what_it_meant_before() -> None:
    env = postgres_env("postgresql://postgres@127.0.0.1/quipu")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("127.0.0.1", "5432", "quipu")
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env[EXTRA_PARAMS_KEY]) == ("postgres", "", "")
    assert extra_params("") == {}
