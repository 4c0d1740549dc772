"""Quipu's answers of problem+json (RFC 7807) as exceptions, one class per status.

Every error the API gives names ``type``, ``title``, ``status``, ``detail``, ``instance``,
``trace_id`` (the request id, also in Quipu's logs) and ``errors``: one entry per field the
server refused, so a form can show each message next to its field.
"""

from __future__ import annotations

import httpx
import msgspec


class FieldError(msgspec.Struct, kw_only=True):
    field: str
    message: str
    code: str


class Problem(msgspec.Struct, kw_only=True):
    type: str = "about:blank"
    title: str = ""
    status: int = 0
    detail: str = ""
    instance: str = ""
    trace_id: str | None = None
    errors: list[FieldError] = []


class QuipuError(Exception):
    """Anything the client raises."""


class QuipuConnectionError(QuipuError):
    """Quipu could not be reached (after the retries the call allowed)."""


class ProblemError(QuipuError):
    """An answer of 4xx or 5xx; the subclass says which status."""

    status: int = 0

    def __init__(self, problem: Problem, response: httpx.Response) -> None:
        fields = "; ".join(f"{e.field}: {e.message}" for e in problem.errors)
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}" + (f" ({fields})" if fields else ""))
        self.problem = problem
        self.response = response

    @property
    def detail(self) -> str:
        return self.problem.detail

    @property
    def errors(self) -> list[FieldError]:
        return self.problem.errors

    @property
    def trace_id(self) -> str | None:
        return self.problem.trace_id


class BadRequest(ProblemError):
    status = 400


class Unauthorized(ProblemError):
    status = 401


class Forbidden(ProblemError):
    status = 403


class NotFound(ProblemError):
    status = 404


class MethodNotAllowed(ProblemError):
    status = 405


class Conflict(ProblemError):
    status = 409


class PreconditionFailed(ProblemError):
    status = 412


class PayloadTooLarge(ProblemError):
    status = 413


class UnsupportedMediaType(ProblemError):
    status = 415


class ValidationFailed(ProblemError):
    status = 422


class RateLimited(ProblemError):
    status = 429


class ServerError(ProblemError):
    status = 500


class NotSupported(ProblemError):
    """501: the server cannot do this here (vector search without pgvector)."""

    status = 501


class Unavailable(ProblemError):
    status = 503


BY_STATUS: dict[int, type[ProblemError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        ValidationFailed,
        RateLimited,
        ServerError,
        NotSupported,
        Unavailable,
    )
}


def problem_error(response: httpx.Response) -> ProblemError:
    """The exception for an error answer, with its field errors (any body, problem+json or not)."""
    try:
        problem = msgspec.json.decode(response.content, type=Problem)
    except msgspec.DecodeError:  # not problem+json (a proxy's page): keep what there is
        problem = Problem(detail=response.text[:500])
    if not problem.status:
        problem.status = response.status_code
    if not problem.title:
        problem.title = response.reason_phrase
    cls = BY_STATUS.get(response.status_code, ServerError if response.status_code >= 500 else ProblemError)
    return cls(problem, response)
