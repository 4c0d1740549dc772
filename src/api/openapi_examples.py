"""Request examples for the operations a new user calls first (shown by /docs, usable as is)."""

from __future__ import annotations

from typing import Any

EXAMPLE_WORKFLOW = "0b7e3f1c-5d2a-4c8e-9f41-2a6d3c9e7b10"

REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "createWorkflow": {
        "name": "summarise-url",
        "description": "fetch a page, then summarise it",
        "definition": {
            "nodes": [
                {"id": "fetch", "agent_type": "fetcher", "timeout": 60, "max_retries": 2},
                {"id": "summarise", "agent_type": "summariser"},
            ],
            "edges": [{"from": "fetch", "to": "summarise"}],
        },
        "metadata": {"team": "research"},
    },
    "startExecution": {
        "workflow_id": EXAMPLE_WORKFLOW,
        "input": {"url": "https://example.org/article"},
        "timeout_seconds": 600,
    },
    "createNote": {
        "title": "Deploys need the migration flag",
        "content": "Run `quipu migrate` before rolling out a release that adds a projection.",
        "note_type": "gotcha",
        "metadata": {"repo": "quipu"},
    },
    "searchMemory": {
        "query": "deploy migration",
        "entity_types": ["note", "artifact"],
        "limit": 10,
        "mode": "keyword",
    },
}
