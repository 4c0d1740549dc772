"""`quipu status` renders whatever /admin/projections returns, new fields included."""

from __future__ import annotations

from quipu.status import api_base, render

UNPUBLISHABLE = {"event_id": "e-9", "notification_id": 9, "kind": "workflow.created", "size": 9_000_000}


def _row(name: str, position: int, errors: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": name,
        "position": position,
        "head": 12,
        "lag_events": 12 - position,
        "lag_seconds": 1.25,
        "updated_at": None,
        "errors": errors,
        "unpublishable": [UNPUBLISHABLE],
        "a_field_added_later": True,
    }


def test_table_has_every_field_and_lists_entries_below() -> None:
    dead = {"notification_id": 7, "kind": "note.added", "error": "bad", "attempts": 3}
    text = render([_row("workflows", 12, []), _row("executions", 6, [dead])])
    lines = text.splitlines()
    header = lines[1].split()
    assert header == [
        "NAME",
        "POSITION",
        "HEAD",
        "LAG_EVENTS",
        "LAG_SECONDS",
        "UPDATED_AT",
        "ERRORS",
        "UNPUBLISHABLE",
        "A_FIELD_ADDED_LATER",
    ]
    assert lines[2].split() == ["workflows", "12", "12", "0", "1.2", "-", "0", "1", "yes"]
    assert lines[3].split() == ["executions", "6", "12", "6", "1.2", "-", "1", "1", "yes"]
    # The relay's unpublishable events are the same on every row: listed once.
    assert text.count("event_id=e-9") == 1
    assert "unpublishable (all):" in text
    assert "executions errors:\n  - notification_id=7, kind=note.added, error=bad, attempts=3" in text


def test_an_object_answer_renders_scalars_and_each_list() -> None:
    text = render({"head": 12, "projections": [_row("workflows", 12, [])], "relay": {"position": 12}})
    assert text.startswith("head: 12")
    assert "projections\nNAME" in text and "relay\nposition: 12" in text


def test_api_base_accepts_both_forms() -> None:
    assert api_base("http://h:1") == "http://h:1/api/v1"
    assert api_base("http://h:1/api/v1/") == "http://h:1/api/v1"
