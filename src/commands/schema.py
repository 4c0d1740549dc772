"""Names of the write side's tables. Their DDL is in the versioned migrations
(``commands.migrations``, docs/decisions/0009-write-side-migrations.md), which every role
applies at start-up and ``quipu migrate`` on its own."""

from __future__ import annotations

EVENTS_TABLE = "quipu_events"
