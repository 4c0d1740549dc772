"""The problem+json answers as OpenAPI components, and which of them an operation can give.

The shapes mirror ``api.problems`` (RFC 7807 with ``trace_id`` and field ``errors``); which
status an exception becomes is decided there, and the rules below follow it:

- every protected route: 401 (no, unknown or revoked key), 403 (the key lacks the route's
  scope), 429 (the per-key budget of ``api.rate_limit``) and 503 (Postgres or NATS down);
- a path parameter or an id in the query: 404 (unknown, another tenant's, deleted, or not an
  id at all);
- a JSON body: 400 (not well-formed JSON), 413 (over the size limit, or an event it produces
  is), 415 (not sent as JSON) and 422;
- query, path or header parameters: 422 (out of range, malformed, NUL characters);
- a write (a route needing more than the read scope): 404 (an id it names is unknown) and 409 (the aggregate
  refuses the transition, or a concurrent writer won);
- ``If-Match``: 412 (the version moved on);
- search: 501 (vector search asked for, no embedding model).
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar.openapi.spec import (
    Components,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Reference,
    Schema,
)

from api.problems import PROBLEM_JSON, TITLES

# Component name and description of each status an operation may answer with a problem.
PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The body is not well-formed JSON."),
    401: ("Unauthorized", "No API key, or an unknown or revoked one: send `Authorization: Bearer <api key>`."),
    403: ("Forbidden", "The API key lacks the scope this operation needs (read, write, admin or worker)."),
    404: ("NotFound", "No such resource for this tenant (or the id is not one), or an id the request names is unknown"),
    409: ("Conflict", "The resource's state refuses the change, or a concurrent write won; reload and decide again."),
    412: ("PreconditionFailed", "`If-Match` names a version the resource has moved past."),
    413: ("PayloadTooLarge", "The body, or an event it would record, exceeds the size limit."),
    415: ("UnsupportedMediaType", "The body is not `application/json`."),
    422: ("UnprocessableContent", "The request is invalid; `errors` names each field and what is wrong with it."),
    429: ("TooManyRequests", "The API key's budget for this minute is spent; retry after `Retry-After` seconds."),
    501: ("NotImplemented", "Vector search was asked for but there is no embedding model here; keyword search works."),
    503: ("ServiceUnavailable", "Postgres or NATS is unreachable right now; retry after `Retry-After` seconds."),
}
RETRY_AFTER = frozenset({429, 503})


def _string(description: str, **extra: object) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **extra)  # type: ignore[arg-type]


FIELD_ERROR = Schema(
    type=OpenAPIType.OBJECT,
    title="FieldError",
    required=["field", "message", "code"],
    properties={
        "field": _string("where: a body path such as `nodes[0].id`, `query.limit` or a header name"),
        "message": _string("what is wrong"),
        "code": _string("a stable machine-readable reason, e.g. `invalid`, `required`, `nul_character`"),
    },
)
PROBLEM = Schema(
    type=OpenAPIType.OBJECT,
    title="Problem",
    description="RFC 7807 problem details, the body of every error answer.",
    required=["type", "title", "status", "detail", "instance", "trace_id"],
    properties={
        "type": _string("a URI naming the kind of problem", format="uri"),
        "title": _string("the status's reason phrase"),
        "status": Schema(type=OpenAPIType.INTEGER, description="the HTTP status", minimum=400, maximum=599),
        "detail": _string("what went wrong, for a person"),
        "instance": _string("the request's path"),
        "trace_id": _string("the request id (also the `X-Request-ID` answer header and in the server's logs)"),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Reference(ref="#/components/schemas/FieldError"),
            description="per-field errors of a 422",
        ),
    },
)


@dataclass(frozen=True)
class OperationTraits:
    """What decides an operation's possible problems (see the module docstring)."""

    protected: bool
    writes: bool  # needs more than the read scope: it records events
    names_a_resource: bool  # a path parameter, or an id in the query
    has_body: bool
    has_parameters: bool
    has_if_match: bool
    searches: bool


def statuses_for(op: OperationTraits) -> list[int]:
    found: set[int] = set()
    if op.protected:
        found |= {401, 403, 429, 503}
    if op.names_a_resource:
        found.add(404)
    if op.has_body:
        found |= {400, 413, 415, 422}
    if op.has_parameters:
        found.add(422)
    if op.writes:
        found |= {404, 409}
    if op.has_if_match:
        found.add(412)
    if op.searches:
        found.add(501)
    return sorted(found)


def problem_components(components: Components) -> None:
    """Adds the Problem schema and one response component per status to ``components``."""
    components.schemas["Problem"] = PROBLEM
    components.schemas["FieldError"] = FIELD_ERROR
    responses = dict(components.responses or {})
    for status, (name, description) in PROBLEMS.items():
        headers: dict[str, OpenAPIHeader | Reference] | None = None
        if status in RETRY_AFTER:
            headers = {
                "Retry-After": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.INTEGER, minimum=0), description="seconds to wait before retrying"
                )
            }
        responses[name] = OpenAPIResponse(
            description=f"{TITLES[status]}: {description}",
            headers=headers,
            content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
        )
    components.responses = responses


def problem_reference(status: int) -> Reference:
    return Reference(ref=f"#/components/responses/{PROBLEMS[status][0]}")
