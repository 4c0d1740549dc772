"""CELLSTATE's event kind codes on /event-dag/by-kind: 0x1001 (TRAJECTORY_CREATED in its
reference) finds Quipu's trajectory.created events, as its own code does."""

from __future__ import annotations

import pytest

from domain.events import DomainEvent, event_kind, resolve_kind
from domain.trajectory import TrajectoryCreated
from tests.integration.conftest import Running


async def test_the_cellstate_code_answers_like_the_kind(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    r = await c.post("/api/v1/trajectories", json={"name": "research"}, headers=h)
    assert r.status_code == 201, r.text
    trajectory = r.json()["trajectory_id"]
    await c.post("/api/v1/trajectories", json={"name": "theirs"}, headers=quipu.auth("beta"))
    by_name = (await c.get("/api/v1/event-dag/by-kind/trajectory.created", headers=h)).json()
    for code in ("4097", "0x1001"):
        r = await c.get(f"/api/v1/event-dag/by-kind/{code}", headers=h)
        assert r.status_code == 200 and r.json() == by_name
    assert [(e["kind"], e["stream_id"]) for e in by_name["items"]] == [("trajectory.created", trajectory)]
    assert by_name["items"][0]["code"] == TrajectoryCreated.CODE  # events keep Quipu's code
    assert (await c.get("/api/v1/event-dag/by-kind/0x1002", headers=h)).status_code in (404, 422)


def test_no_quipu_kind_may_take_a_cellstate_code() -> None:
    assert resolve_kind("0x1001") == "trajectory.created"
    with pytest.raises(ValueError, match="duplicate"):

        @event_kind("test.cellstate_clash", 0x1001)
        class Clash(DomainEvent, frozen=True, kw_only=True):
            pass
