"""The NATS subject scheme (versioned; documented in Quipu's README for outside subscribers).

The one definition of the scheme: workers use it, and Quipu imports it from here.

    <prefix>.ev.<tenant>.<category>.<name>      every event, e.g. quipu.ev.acme.workflow.created
    <prefix>.task.<tenant>.<agent_type>         work for workers (a work-queue stream)
    <prefix>.notice.<tenant>.hitp_required      an approval is waiting for a person
    <prefix>.report.<tenant>                    workers report heartbeat/complete/fail (request-reply)
    <prefix>.agent.<tenant>.<agent_id>          messages to one agent (copies of message.sent, by the relay)

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

    def _stream(self, suffix: str) -> str:
        return f"{self.prefix.upper().replace('.', '_')}_{suffix}"

    @property
    def node_scheduled_events(self) -> str:
        return f"{self.prefix}.ev.*.execution.node_scheduled"

    @property
    def tasks_stream(self) -> str:
        return self._stream("TASKS")

    @property
    def all_tasks(self) -> str:
        return f"{self.prefix}.task.>"

    def task(self, tenant_id: str, agent_type: str | None) -> str:
        return f"{self.prefix}.task.{tenant_id}.{agent_type or DEFAULT_AGENT_TYPE}"

    @property
    def notices_stream(self) -> str:
        return self._stream("NOTICES")

    @property
    def all_notices(self) -> str:
        return f"{self.prefix}.notice.>"

    def notice(self, tenant_id: str, notice_type: str) -> str:
        return f"{self.prefix}.notice.{tenant_id}.{notice_type}"

    def reports(self, tenant_id: str) -> str:
        return f"{self.prefix}.report.{tenant_id}"

    @property
    def all_reports(self) -> str:
        return f"{self.prefix}.report.*"

    @property
    def agent_messages_stream(self) -> str:
        return self._stream("AGENT_MESSAGES")

    @property
    def all_agent_messages(self) -> str:
        return f"{self.prefix}.agent.>"

    def agent_messages(self, tenant_id: str, agent_id: str) -> str:
        """An agent's messages: each ``message.sent`` envelope naming it as a recipient."""
        return f"{self.prefix}.agent.{tenant_id}.{agent_id}"


DEFAULT_AGENT_TYPE = "default"  # the queue of task nodes that name no agent type
