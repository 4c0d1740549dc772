"""``Quipu-Log-Position``: a command's response names the log position it reached (the
notification id of the last event it appended), so a reader elsewhere can wait for it."""

from __future__ import annotations

import psycopg

from tests.integration.conftest import Running

DEFINITION = {"nodes": [{"id": "a"}]}


def _position_of(database_url: str, event_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT notification_id FROM event_dag WHERE event_id = %s", (event_id,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_commands_carry_the_position_they_reached(quipu: Running, database_url: str) -> None:
    auth = quipu.auth()
    r = await quipu.client.post("/api/v1/workflows", json={"name": "w", "definition": DEFINITION}, headers=auth)
    assert r.status_code == 201, r.text
    created = int(r.headers["quipu-log-position"])
    assert created == _position_of(database_url, r.json()["last_event_id"])

    r = await quipu.client.put(
        f"/api/v1/workflows/{r.json()['id']}", json={"name": "w2", "definition": DEFINITION}, headers=auth
    )
    assert r.status_code == 200, r.text
    updated = int(r.headers["quipu-log-position"])
    assert updated > created and updated == _position_of(database_url, r.json()["last_event_id"])

    # Queries and refused commands reach no position.
    assert "quipu-log-position" not in (await quipu.client.get("/api/v1/workflows", headers=auth)).headers
    r = await quipu.client.post("/api/v1/workflows", json={"name": "", "definition": DEFINITION}, headers=auth)
    assert r.status_code == 422 and "quipu-log-position" not in r.headers


async def test_an_idempotent_retry_carries_the_position_of_the_first_try(quipu: Running, database_url: str) -> None:
    """A retry appends nothing, but answers with the created resource: a client that reads from
    a replica after it must still learn the position to wait for."""
    headers = {**quipu.auth(), "Idempotency-Key": "retry-position"}
    body = {"name": "w", "definition": DEFINITION}
    first = await quipu.client.post("/api/v1/workflows", json=body, headers=headers)
    assert first.status_code == 201, first.text
    retry = await quipu.client.post("/api/v1/workflows", json=body, headers=headers)
    assert retry.status_code in (200, 201), retry.text
    assert retry.json()["id"] == first.json()["id"]
    assert retry.headers["quipu-log-position"] == first.headers["quipu-log-position"]
    assert int(retry.headers["quipu-log-position"]) == _position_of(database_url, first.json()["last_event_id"])
