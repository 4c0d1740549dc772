"""Application-level errors (on top of the domain's) that the API maps to HTTP."""

from __future__ import annotations

from domain.errors import Conflict, DomainError


class ConcurrencyConflict(Conflict):
    """Another writer appended to the same stream first (HTTP 409)."""


class CausesRejected(DomainError):
    """``caused_by`` names an event that does not exist for this tenant (HTTP 422)."""


class IdempotencyMismatch(DomainError):
    """An ``Idempotency-Key`` was reused with a different request body (HTTP 422)."""


class PreconditionFailed(DomainError):
    """``If-Match`` did not match the current version (HTTP 412)."""
