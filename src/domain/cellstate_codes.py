"""Event kind codes the CELLSTATE reference defines, answered next to Quipu's own.

CELLSTATE's ``GET /event-dag/by-kind/{kind}`` takes a u16 code and names one of them:
``0x1001`` (4097) for TRAJECTORY_CREATED. Where such a code stands for a kind Quipu has, it
resolves to that kind; Quipu's own codes (docs/architecture.md, "The event envelope") stay the
ones events carry. No Quipu code may take one of these (``domain.events`` refuses it).
"""

from __future__ import annotations

CELLSTATE_CODES: dict[int, str] = {
    0x1001: "trajectory.created",  # TRAJECTORY_CREATED
}
