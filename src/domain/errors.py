"""Errors the domain raises when a command is not allowed. The API maps each to HTTP once."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one input field (a JSON path such as ``nodes[2].id``)."""

    field: str
    message: str
    code: str


class DomainError(Exception):
    """Base class: a command was refused by the rules of the domain."""


@dataclass
class ValidationFailed(DomainError):
    """The command's input breaks a rule; every problem is reported at once."""

    problems: list[FieldProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{p.field}: {p.message}" for p in self.problems)


class NotFound(DomainError):
    """The aggregate or event does not exist (or belongs to another tenant)."""


class Conflict(DomainError):
    """The command conflicts with the current state (wrong version, deleted, ...)."""
