"""jsondagapi's spellings next to Quipu's: its semantic ``workflow_version`` and its
upper-case status names (``CREATED``, ``RUNNING``, ``COMPLETED``...), shown when a request
asks for ``?style=jsondag``. The README's "Running a workflow: executions, workers,
approvals" lists them."""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

import msgspec
from litestar.params import QueryParameter

from api.pagination import MAX_VERSION
from domain.errors import FieldProblem, ValidationFailed

StatusStyle = Annotated[
    Literal["quipu", "jsondag"],
    QueryParameter(description="`jsondag` names statuses as jsondagapi does (RUNNING, COMPLETED, ...)"),
]
WorkflowVersion = (
    Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)]
    | Annotated[str, msgspec.Meta(pattern=r"^([1-9][0-9]{0,8}|[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9})$")]
)

# Quipu's status -> jsondagapi's name. jsondagapi names CREATED, RUNNING, COMPLETED, FAILED
# and CANCELLED; the others are Quipu's own in jsondagapi's case. ``pending`` never reaches a
# client (a run's first nodes are scheduled in the transaction that starts it), so CREATED
# appears only for a status Quipu may add later under that name.
JSONDAG_STATUS = {
    "pending": "CREATED",
    "running": "RUNNING",
    "paused": "PAUSED",
    "waiting_for_approval": "WAITING_FOR_APPROVAL",
    "succeeded": "COMPLETED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
    "timed_out": "TIMED_OUT",
}

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")

S = TypeVar("S", bound=msgspec.Struct)


def status_name(status: str, style: str) -> str:
    """``status`` as the requested style names it (an unknown status in upper case)."""
    return JSONDAG_STATUS.get(status, status.upper()) if style == "jsondag" else status


def styled(out: S, style: str) -> S:
    """A response whose ``status`` is named in ``style``."""
    return out if style == "quipu" else msgspec.structs.replace(out, status=status_name(out.status, style))  # type: ignore[attr-defined]


def definition_version(version: int | str) -> int:
    """Quipu's definition version of a ``workflow_version``: an integer is one already;
    "1.0.0" is jsondagapi's numbering, where a workflow is created as 1.0.0 and each change
    adds a minor version (1.1.0, 1.2.0...), so 1.N.0 is definition version N + 1."""
    if isinstance(version, int):
        return version
    match = _SEMVER.match(version)
    if match is None:
        return int(version)
    major, minor, patch = (int(part) for part in match.groups())
    if major != 1 or patch != 0 or minor + 1 > MAX_VERSION:
        raise ValidationFailed(
            [FieldProblem("workflow_version", f"'{version}' is not a version 1.N.0 of a workflow", "unknown_version")]
        )
    return minor + 1
