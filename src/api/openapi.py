"""The OpenAPI document at /docs/openapi.json and the docs UI at /docs.

Litestar builds the document from the route handlers; ``describe`` then completes it in one
place instead of in every controller: summaries from the operation ids ("List workflows"),
descriptions from the handlers' docstrings, a tag per resource, the bearer security scheme on
every protected route, the problem+json answers each operation can give
(``api.openapi_problems``), optional headers marked optional, the real media types of the
streaming routes, and request examples. The docs UI is ``api.openapi_docs_ui``.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
    Tag,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import ParameterKwarg
from litestar.routes import HTTPRoute

from api import read_freshness
from api.openapi_docs_ui import DOCS_PATH, OfflineSwagger
from api.openapi_examples import REQUEST_EXAMPLES
from api.openapi_problems import OperationTraits, problem_components, problem_reference, statuses_for
from api.openapi_rules import rules_text

SECURITY_SCHEME = "apiKey"
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
OPTIONAL_HEADERS = frozenset({"Idempotency-Key", "If-Match", "Last-Event-ID"})
# Health, readiness, metrics and the docs answer without a key (probes and browsers call them).
TAGS = {
    "workflows": "Versioned workflow definitions (DAGs of nodes and edges) and their editing.",
    "analysis": "Validate or inspect a definition without saving it.",
    "callbacks": "Outside services' HTTP endpoints that serve workflow nodes, with signed deliveries.",
    "executions": "Runs of a workflow: start, steer, report on nodes, metrics and timeline.",
    "live": "The execution's events as they happen (Server-Sent Events; a WebSocket at /ws).",
    "time travel": "State as of any event, and replay of a run's envelopes (NDJSON or SSE).",
    "checkpoints": "Named points of a run to compare and resume from.",
    "branches": "Forks of a run: counterfactuals, play from a node, resume a checkpoint.",
    "approvals": "Human-in-the-loop decisions that gate a run.",
    "event-dag": "Forensics over the causal graph of events: ancestors, paths, verification.",
    "artifacts": "Memory: produced artifacts with provenance and supersession.",
    "notes": "Memory: notes (facts, conventions, gotchas...) with provenance and supersession.",
    "edges": "Memory: typed relations between memory entities, and walks over them.",
    "trajectories": "Memory: an agent's trajectories (sessions of work).",
    "scopes": "Memory: token-budgeted scopes within a trajectory.",
    "turns": "Memory: the turns of a scope's conversation.",
    "search": "Keyword, vector and hybrid search over memory.",
    "agents": "Coordination: registered agents, their heartbeats and status (silent agents go offline).",
    "agent-types": "The agent types named by the registry, workflows, registered agents and scheduled tasks.",
    "locks": "Coordination: locks on memory resources with fencing tokens, expiry and waiting.",
    "messages": "Coordination: messages between agents, acknowledged by their recipients.",
    "delegations": "Coordination: tasks one agent delegates to another (pending, accepted, completed).",
    "handoffs": "Coordination: an agent hands its trajectory and context to another.",
    "api-keys": "API keys of the tenant (admin scope).",
    "tenants": "Tenants: the calling key's own (any key), every tenant (operator scope); suspend and reactivate.",
    "summarization": "Memory: summarization policies, and the requests their triggers record for workers.",
    "admin": "Operating the projections (admin scope).",
    "workers": "NATS access for worker processes (worker scope).",
    "health": "Liveness, readiness and Prometheus metrics (no key needed).",
}
# Controllers tagged by area rather than resource: their operations take the resource's tag.
_BROAD_TAGS = frozenset({"memory"})
_ACRONYMS = {"api": "API", "dag": "DAG", "id": "ID"}
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Quipu",
        version=version("quipu"),
        description=(
            "Event-sourced flight recorder and control plane for AI-agent workflows and agent memory.\n\n"
            "Send an API key as `Authorization: Bearer <key>` (the Authorize button). Errors are "
            "`application/problem+json` (RFC 7807). Writes that create take an optional `Idempotency-Key`; "
            "writes that change a resource take an optional `If-Match` with the `ETag` a read returned."
        ),
        path=DOCS_PATH,
        use_handler_docstrings=True,
        render_plugins=[OfflineSwagger(), JsonRenderPlugin()],
        tags=[Tag(name=name, description=text) for name, text in TAGS.items()],
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API key (`qk_...`): `quipu keys create`, or POST /api/v1/api-keys.",
                )
            }
        ),
    )


def describe(app: Litestar) -> None:
    """Completes the app's generated document in place (Litestar serves the object it built)."""
    document = app.openapi_schema
    problem_components(document.components)
    handlers = _handlers(app)
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(item, method)
            if isinstance(operation, Operation):
                _describe_operation(path, operation, handlers[(path, method.upper())])


def _handlers(app: Litestar) -> dict[tuple[str, str], HTTPRouteHandler]:
    found: dict[tuple[str, str], HTTPRouteHandler] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                for method in handler.http_methods:
                    found[(route.path_format or "/", method)] = handler
    return found


def _describe_operation(path: str, op: Operation, handler: HTTPRouteHandler) -> None:
    op.summary = summary_of(op.operation_id or handler.handler_name)
    op.description = ((op.description or "").replace("``", "`") + rules_text(op.operation_id or "")) or None
    op.tags = [_tag(path, tag) for tag in op.tags or []]
    signature = handler.parsed_fn_signature.parameters
    protected = "principal" in signature
    if protected:
        op.security = [{SECURITY_SCHEME: []}]
    read_freshness.document(op)  # ?min_position on read-model queries
    parameters = [p for p in op.parameters or [] if isinstance(p, Parameter)]
    for parameter in parameters:
        if parameter.param_in == "header" and parameter.name in OPTIONAL_HEADERS:
            parameter.required = False
            parameter.schema = _without_null(parameter.schema)
        if parameter.param_in == "query":
            parameter.schema = _lenient_datetime(parameter.schema)
            _zero_bounds(parameter, handler)
    if isinstance(op.request_body, RequestBody) and _body_is_optional(handler):
        op.request_body.required = False
    _media_types(path, op)
    if op.operation_id in REQUEST_EXAMPLES:
        _request_example(op, REQUEST_EXAMPLES[op.operation_id])
    traits = OperationTraits(
        protected=protected,
        writes=protected and handler.opt.get("scope", "read") != "read",
        names_a_resource=any(p.param_in == "path" or _is_uuid(p.schema) for p in parameters),
        has_body=op.request_body is not None,
        has_parameters=bool(parameters),
        has_if_match=any(p.name == "If-Match" for p in parameters),
        searches=path.endswith("/search"),
    )
    # Litestar's default 400 ({status_code, detail, extra}) is never the shape answered.
    responses = {code: r for code, r in (op.responses or {}).items() if code != "400"}
    for status in statuses_for(traits):
        responses.setdefault(str(status), problem_reference(status))
    op.responses = responses


def summary_of(operation_id: str) -> str:
    """``listWorkflows`` -> "List workflows"; ``getExecutionStateAsOf`` -> "Get execution state as of"."""
    words = [_ACRONYMS.get(w.lower(), w.lower()) for w in _WORD.findall(operation_id.replace("_", " "))]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _tag(path: str, tag: str) -> str:
    if tag not in _BROAD_TAGS:
        return tag
    if path.endswith("/search"):
        return "search"
    return path.removeprefix("/api/v1/").split("/", 1)[0]


def _without_null(schema: Schema | Reference | None) -> Schema | Reference | None:
    """A header is absent or a string: the ``null`` branch of ``str | None`` means nothing on the wire."""
    if not isinstance(schema, Schema) or not schema.one_of:
        return schema
    kept = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == OpenAPIType.NULL)]
    if len(kept) != 1 or not isinstance(kept[0], Schema):
        return schema
    branch = kept[0]
    for name in ("max_length", "min_length", "pattern", "format", "description"):
        if getattr(branch, name) is None and getattr(schema, name) is not None:
            setattr(branch, name, getattr(schema, name))
    return branch


def _is_uuid(schema: Schema | Reference | None) -> bool:
    branches = schema.one_of if isinstance(schema, Schema) and schema.one_of else [schema]
    return any(isinstance(b, Schema) and b.format == OpenAPIFormat.UUID for b in branches)


def _lenient_datetime(schema: Schema | Reference | None) -> Schema | Reference | None:
    """A date-time query parameter also takes a Unix timestamp (Litestar converts numbers)."""
    branches = schema.one_of if isinstance(schema, Schema) and schema.one_of else [schema]
    if not any(isinstance(b, Schema) and b.format == OpenAPIFormat.DATE_TIME for b in branches):
        return schema
    return Schema(
        one_of=[
            Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.DATE_TIME),
            # Python datetimes span the years 1 to 9999.
            Schema(
                type=OpenAPIType.NUMBER,
                description="seconds since the Unix epoch",
                minimum=-62135596800,
                exclusive_maximum=253402300800,  # 9999-12-31T23:59:59.999999 is the last instant
            ),
            Schema(type=OpenAPIType.NULL),
        ]
    )


_BOUNDS = {"ge": "minimum", "gt": "exclusive_minimum", "le": "maximum", "lt": "exclusive_maximum"}


def _zero_bounds(parameter: Parameter, handler: HTTPRouteHandler) -> None:
    """Litestar drops a bound of 0 of an optional parameter (``QueryParameter(ge=0)`` on
    ``int | None`` reads as no bound); the server refuses -1 there, so the schema must say so."""
    schema = parameter.schema
    for field in handler.parsed_fn_signature.parameters.values():
        kwarg = field.kwarg_definition
        if not isinstance(kwarg, ParameterKwarg) or (kwarg.query or field.name) != parameter.name:
            continue
        if isinstance(schema, Schema):
            for bound, keyword in _BOUNDS.items():
                if getattr(kwarg, bound) is not None and getattr(schema, keyword) is None:
                    setattr(schema, keyword, getattr(kwarg, bound))


def _body_is_optional(handler: HTTPRouteHandler) -> bool:
    data = handler.parsed_fn_signature.parameters.get("data")
    return data is not None and (data.is_optional or data.has_default)


def _media_types(path: str, op: Operation) -> None:
    """The streaming routes answer NDJSON or SSE; Litestar only knows they stream."""
    ok = (op.responses or {}).get("200")
    if not isinstance(ok, OpenAPIResponse):
        return
    line = Schema(type=OpenAPIType.OBJECT, description="one event envelope")
    if path.endswith("/replay"):
        ok.description = "The envelopes: NDJSON (one per line), or SSE with `Accept: text/event-stream`."
        ok.content = {
            NDJSON: OpenAPIMediaType(schema=line),
            SSE: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
        }
    elif path.endswith("/events"):
        ok.description = "Server-Sent Events until the run completes."
        ok.content = {SSE: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))}


def _request_example(op: Operation, example: dict[str, Any]) -> None:
    body = op.request_body
    if body is None or isinstance(body, Reference):
        return
    for media in body.content.values():
        media.examples = {"example": Example(summary="a typical request", value=example)}
