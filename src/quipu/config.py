"""Configuration from the environment (and CLI flags, which override it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "quipu"


def _port(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _float(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    return float(value) if value else None


def _path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


@dataclass
class Settings:
    database_url: str | None = field(default_factory=lambda: os.environ.get("QUIPU_DATABASE_URL"))
    # Where the API's list queries read the read models (a hot standby, say); unset: the
    # primary. Commands, projectors and log reads always use QUIPU_DATABASE_URL.
    read_database_url: str | None = field(default_factory=lambda: os.environ.get("QUIPU_READ_DATABASE_URL") or None)
    # How long a query with ?min_position waits for its read models (bounded by the API).
    min_position_wait_ms: int = field(
        default_factory=lambda: int(os.environ.get("QUIPU_MIN_POSITION_WAIT_MS") or "5000")
    )
    nats_url: str | None = field(default_factory=lambda: os.environ.get("QUIPU_NATS_URL"))
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("QUIPU_DATA_DIR") or default_data_dir()))
    host: str = field(default_factory=lambda: os.environ.get("QUIPU_HOST", "127.0.0.1"))
    # API port; None: 8000 when free, else a free port (`quipu up`), 8000 (`quipu api`).
    port: int | None = field(default_factory=lambda: _port("QUIPU_PORT"))
    # /health, /ready and /metrics of `quipu relay` and `quipu projector`; 0: a free port.
    health_port: int = field(default_factory=lambda: _port("QUIPU_HEALTH_PORT") or 0)
    subject_prefix: str = field(default_factory=lambda: os.environ.get("QUIPU_SUBJECT_PREFIX", "quipu"))
    pool_size: int = field(default_factory=lambda: int(os.environ.get("QUIPU_POOL_SIZE", "10")))
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get("QUIPU_MAX_BODY_BYTES", str(1 << 20))))
    # Largest encoded event (see commands.limits): above the body limit, below NATS max_payload.
    max_event_bytes: int = field(default_factory=lambda: int(os.environ.get("QUIPU_MAX_EVENT_BYTES", str(4 << 20))))
    rate_limit_per_minute: int = field(
        default_factory=lambda: int(os.environ.get("QUIPU_RATE_LIMIT_PER_MINUTE", "6000"))
    )
    agent_types: frozenset[str] | None = field(
        default_factory=lambda: (
            frozenset(t.strip() for t in os.environ["QUIPU_AGENT_TYPES"].split(",") if t.strip())
            if os.environ.get("QUIPU_AGENT_TYPES")
            else None
        )
    )
    # Seconds without a heartbeat after which an agent is marked offline and loses its locks.
    agent_offline_after: float = field(default_factory=lambda: float(os.environ.get("QUIPU_AGENT_OFFLINE_AFTER", "30")))
    # NATS authentication (see the README's security section). A .creds file this process
    # connects with, and/or a signing key of the NATS account (with the account's public key)
    # from which each role mints a user of its own and the API mints workers' credentials.
    nats_creds: Path | None = field(default_factory=lambda: _path("QUIPU_NATS_CREDS"))
    nats_account: str | None = field(default_factory=lambda: os.environ.get("QUIPU_NATS_ACCOUNT") or None)
    nats_signing_key_file: Path | None = field(default_factory=lambda: _path("QUIPU_NATS_SIGNING_KEY_FILE"))
    # JetStream storage (see bus.streams): replicas of the event and agent-message streams (3 on
    # a three-node cluster) and limits of the event stream (bytes; seconds; unset: keep every
    # event). The relay updates existing streams to these whenever it becomes the leader.
    nats_replicas: int = field(default_factory=lambda: int(os.environ.get("QUIPU_NATS_REPLICAS") or "1"))
    nats_events_max_bytes: int | None = field(default_factory=lambda: _int("QUIPU_NATS_EVENTS_MAX_BYTES"))
    nats_events_max_age: float | None = field(default_factory=lambda: _float("QUIPU_NATS_EVENTS_MAX_AGE"))
    # `quipu up`: how many embedded nats-servers to run as one JetStream cluster (0: a single
    # server, no cluster); replicas then default to min(nodes, 3).
    nats_cluster: int = field(default_factory=lambda: int(os.environ.get("QUIPU_NATS_CLUSTER") or "0"))
    # The NATS URL workers are told to use (default: the one Quipu uses).
    nats_public_url: str | None = field(default_factory=lambda: os.environ.get("QUIPU_NATS_PUBLIC_URL") or None)
    worker_credentials_ttl: int = field(
        default_factory=lambda: int(os.environ.get("QUIPU_WORKER_CREDENTIALS_TTL", "3600"))
    )
    # The key callback signing secrets are derived from (quipu.secret_key): at least 32
    # characters; unset, a key file in the data directory is made and kept.
    secret_key: str | None = field(default_factory=lambda: os.environ.get("QUIPU_SECRET_KEY") or None)
    # Callback deliveries: attempts before a delivery is dead, seconds per attempt, and the
    # backoff after the first failure (doubling, capped at 300 s).
    callback_max_attempts: int = field(default_factory=lambda: int(os.environ.get("QUIPU_CALLBACK_MAX_ATTEMPTS", "5")))
    callback_timeout: float = field(default_factory=lambda: float(os.environ.get("QUIPU_CALLBACK_TIMEOUT", "10")))
    callback_retry_base: float = field(default_factory=lambda: float(os.environ.get("QUIPU_CALLBACK_RETRY_BASE", "1")))
    log_format: str = field(default_factory=lambda: os.environ.get("QUIPU_LOG_FORMAT", "auto"))
    log_level: str = field(default_factory=lambda: os.environ.get("QUIPU_LOG_LEVEL", "info"))
