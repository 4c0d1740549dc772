"""The NATS subject scheme, defined once in ``quipu_client.subjects`` (workers and Quipu must
agree on it, and workers install only the client); Quipu's modules import it from here."""

from quipu_client.subjects import DEFAULT_AGENT_TYPE, SUBJECT_SCHEME_VERSION, Subjects

__all__ = ["DEFAULT_AGENT_TYPE", "SUBJECT_SCHEME_VERSION", "Subjects"]
