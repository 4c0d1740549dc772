"""The one place that maps errors to HTTP: RFC 7807 problem details for every failure."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from api.context import BusUnavailable
from commands.errors import CausesRejected, ConcurrencyConflict, IdempotencyMismatch, PreconditionFailed
from commands.limits import EventTooLarge
from commands.outages import database_unavailable
from domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from domain.events import UnknownKind
from projections.search_index import VectorSearchUnavailable

log = structlog.get_logger(__name__)
PROBLEM_JSON = "application/problem+json"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class FieldError(msgspec.Struct):
    field: str
    message: str
    code: str


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    trace_id: str
    errors: list[FieldError] = []


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Problem]:
    trace_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
    body = Problem(
        type=f"https://quipu.dev/problems/{code or TITLES.get(status, 'error').lower().replace(' ', '-')}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        trace_id=str(trace_id),
        errors=errors or [],
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(extra: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or "body")
            message = str(item.get("message") or "invalid")
            field = key
            # msgspec reports "… - at `$.nodes[0].id`": surface the JSON path as the field.
            if "at `$" in message:
                message, _, path = message.partition(" - at `$")
                field = path.rstrip("`").lstrip(".") or "body"
            errors.append(FieldError(field=field, message=message, code="invalid"))
    return errors


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    if isinstance(exc, ValidationFailed):
        return problem_response(
            request,
            422,
            str(exc) or "validation failed",
            code="validation",
            errors=[FieldError(p.field, p.message, p.code) for p in exc.problems],
        )
    if isinstance(exc, (CausesRejected, IdempotencyMismatch)):
        field = "caused_by" if isinstance(exc, CausesRejected) else "Idempotency-Key"
        code = "unknown_cause" if isinstance(exc, CausesRejected) else "idempotency_key_reused"
        return problem_response(request, 422, str(exc), code=code, errors=[FieldError(field, str(exc), code)])
    if isinstance(exc, EventTooLarge):  # an event outgrew its request (e.g. a checkpoint's merged state)
        return problem_response(request, 413, str(exc), code="event-too-large")
    if isinstance(exc, UnknownKind):
        return problem_response(request, 404, f"unknown event kind '{exc}'", code="unknown-kind")
    if isinstance(exc, PreconditionFailed):
        return problem_response(request, 412, str(exc), code="precondition-failed")
    if isinstance(exc, ConcurrencyConflict | Conflict):
        return problem_response(request, 409, str(exc), code="conflict")
    if isinstance(exc, VectorSearchUnavailable):  # keyword search still works: say so, not 500
        return problem_response(request, 501, str(exc), code="vector-search-unavailable")
    if isinstance(exc, NotFound):
        return problem_response(request, 404, str(exc), code="not-found")
    if isinstance(exc, DomainError):
        return problem_response(request, 422, str(exc), code="domain")
    if isinstance(exc, msgspec.ValidationError):  # a body converted inside a handler
        message, _, path = str(exc).partition(" - at `$")
        field = path.rstrip("`").lstrip(".") or "body"
        return problem_response(
            request, 422, "the request is invalid", code="validation", errors=[FieldError(field, message, "invalid")]
        )
    if isinstance(exc, ValidationException):
        detail = exc.detail or "invalid request"
        errors = _validation_errors(exc.extra)
        status = 415 if "content-type" in detail.lower() else 422
        return problem_response(
            request, status, detail if not errors else "the request is invalid", code="validation", errors=errors
        )
    if isinstance(exc, BusUnavailable):
        return problem_response(
            request,
            503,
            f"NATS is unavailable; retry shortly ({exc})",
            code="unavailable",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, NotAuthorizedException):
        return problem_response(request, 401, exc.detail, headers={"WWW-Authenticate": 'Bearer realm="quipu"'})
    if isinstance(exc, PermissionDeniedException):
        return problem_response(request, 403, exc.detail)
    if isinstance(exc, HTTPException):
        status = exc.status_code
        detail = exc.detail
        if status == 400 and "body" in detail.lower():
            status = 422  # malformed JSON / wrong types are a content problem, not a syntax one
        return problem_response(request, status, detail, headers=exc.headers)
    if database_unavailable(exc):
        log.warning("dependency_unavailable", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            request, 503, "the database is unavailable; retry shortly", code="unavailable", headers={"Retry-After": "1"}
        )
    log.exception("unhandled_error", path=request.url.path)
    return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred; it has been logged")
