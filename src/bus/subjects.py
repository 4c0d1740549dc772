"""The NATS subject scheme (versioned; documented in the README for outside subscribers).

    <prefix>.ev.<tenant>.<category>.<name>      every event, e.g. quipu.ev.acme.workflow.created
    <prefix>.task.<tenant>.<agent_type>         work for workers (orchestration)

Tenant ids and kinds are restricted to subject-safe tokens, so a subscriber's wildcard
``quipu.ev.acme.>`` sees exactly tenant ``acme``.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBJECT_SCHEME_VERSION = 1


@dataclass(frozen=True)
class Subjects:
    prefix: str = "quipu"

    @property
    def events_stream(self) -> str:
        return f"{self.prefix.upper().replace('.', '_')}_EVENTS"

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.ev.>"

    def tenant_events(self, tenant_id: str) -> str:
        return f"{self.prefix}.ev.{tenant_id}.>"

    def event(self, tenant_id: str, kind: str) -> str:
        category, _, name = kind.partition(".")
        return f"{self.prefix}.ev.{tenant_id}.{category}.{name}"
