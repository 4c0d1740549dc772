"""The OpenAPI document tells the truth about the HTTP API, checked against a running Quipu.

The document is valid OpenAPI; every operation has a summary, a description, a tag, the
bearer requirement where a key is needed and its problem+json answers; optional headers are
optional; the streams name their media types. Then the API is walked: every documented
operation but the probes refuses a call without a key with a 401 problem, errors on malformed
ids and unknown routes are problems too, ``OPTIONS`` and 405 agree on ``Allow``, and /docs
loads nothing from outside this server.
"""

from __future__ import annotations

import re
import uuid
from importlib.metadata import version
from typing import Any

from openapi_spec_validator import validate

from tests.integration.conftest import Running

UNPROTECTED = {"/health", "/ready", "/metrics"}
METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM = "application/problem+json"


async def _document(q: Running) -> dict[str, Any]:
    r = await q.client.get("/docs/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, item[m]) for path, item in doc["paths"].items() for m in METHODS if m in item]


def _schema(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def _value(schema: dict[str, Any]) -> str:
    """A well-formed value of a parameter (for an id: one nobody has)."""
    branch = next((s for s in schema.get("oneOf", [schema]) if s.get("type") != "null"), schema)
    if branch.get("format") == "uuid":
        return str(uuid.uuid4())
    if "enum" in branch:
        return str(branch["enum"][0])
    if branch.get("type") == "integer":
        return str(schema.get("minimum", branch.get("minimum", 1)))
    return "x"


def _concrete(path: str, op: dict[str, Any]) -> str:
    """The path with each path parameter filled in (and nothing else: no query, no body)."""
    for p in op.get("parameters", []):
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", _value(p["schema"]))
    return path


async def test_the_document_is_valid_openapi_with_the_package_version(quipu: Running) -> None:
    doc = await _document(quipu)
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    assert doc["info"]["version"] == version("quipu")
    assert len(_operations(doc)) > 100


async def test_every_operation_is_described_secured_and_lists_its_problems(quipu: Running) -> None:
    doc = await _document(quipu)
    schemes = doc["components"]["securitySchemes"]
    assert schemes == {"apiKey": {"type": "http", "scheme": "bearer", "description": schemes["apiKey"]["description"]}}
    tags = {t["name"] for t in doc["tags"]}
    summaries: set[str] = set()
    for path, method, op in _operations(doc):
        label = f"{method.upper()} {path}"
        assert op.get("summary") and op["summary"] not in summaries, label
        assert not re.fullmatch(r"[A-Z][a-z]+[A-Z]\w*", op["summary"]), f"{label}: a method name, not words"
        summaries.add(op["summary"])
        assert op.get("description"), label
        assert op.get("tags") and set(op["tags"]) <= tags, label
        responses = op["responses"]
        if "400" in responses:  # malformed JSON; never Litestar's default {status_code, detail, extra}
            assert responses["400"] == {"$ref": "#/components/responses/BadRequest"}, label
        if path in UNPROTECTED:
            assert "security" not in op, label
            continue
        assert op["security"] == [{"apiKey": []}], label
        for status in ("401", "403", "429", "503"):
            assert responses[status]["$ref"].startswith("#/components/responses/"), f"{label} {status}"
        parameters = op.get("parameters", [])
        if any(p["in"] == "path" for p in parameters):
            assert "404" in responses, label
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= responses.keys(), label
        if any(p["name"] == "If-Match" for p in parameters):
            assert "412" in responses, label
        for p in parameters:
            if p["in"] == "header":
                assert p["required"] is False, f"{label}: header {p['name']} is optional"
    for name, response in doc["components"]["responses"].items():
        assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}, name
    assert {"401", "403", "404", "409", "412", "413", "415", "422", "429", "501", "503"} <= {
        code for _, _, op in _operations(doc) for code in op["responses"]
    }


async def test_streams_name_their_media_types_and_main_requests_have_examples(quipu: Running) -> None:
    doc = await _document(quipu)
    replay = doc["paths"]["/api/v1/executions/{execution_id}/replay"]["get"]["responses"]["200"]["content"]
    assert set(replay) == {"application/x-ndjson", "text/event-stream"}
    events = doc["paths"]["/api/v1/executions/{execution_id}/events"]["get"]["responses"]["200"]["content"]
    assert set(events) == {"text/event-stream"}
    by_id = {op["operationId"]: op for _, _, op in _operations(doc)}
    for operation_id in ("createWorkflow", "startExecution", "createNote", "searchMemory"):
        body = by_id[operation_id]["requestBody"]["content"]["application/json"]
        assert body["examples"]["example"]["value"], operation_id


async def test_request_schemas_are_closed_like_the_server(quipu: Running) -> None:
    """Every request body refuses unknown fields (422), and its schema says so."""
    doc = await _document(quipu)
    closed = 0
    for path, method, op in _operations(doc):
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if schema and "$ref" in schema:
            assert _schema(doc, schema["$ref"]).get("additionalProperties") is False, f"{method} {path}"
            closed += 1
    assert closed > 30
    r = await quipu.client.post(
        "/api/v1/notes",
        json={"title": "t", "content": "c", "note_type": "fact", "colour": "red"},
        headers=quipu.auth(),
    )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM


async def test_examples_are_accepted_as_they_are(quipu: Running) -> None:
    """A user who copies the documented example of a create gets a 201."""
    doc = await _document(quipu)
    by_id = {op["operationId"]: op for _, _, op in _operations(doc)}

    def example(operation_id: str) -> Any:
        return by_id[operation_id]["requestBody"]["content"]["application/json"]["examples"]["example"]["value"]

    r = await quipu.client.post("/api/v1/workflows", json=example("createWorkflow"), headers=quipu.auth())
    assert r.status_code == 201, r.text
    start = {**example("startExecution"), "workflow_id": r.json()["id"]}
    r = await quipu.client.post("/api/v1/executions", json=start, headers=quipu.auth())
    assert r.status_code == 201, r.text
    r = await quipu.client.post("/api/v1/notes", json=example("createNote"), headers=quipu.auth())
    assert r.status_code == 201, r.text
    r = await quipu.client.post("/api/v1/search", json=example("searchMemory"), headers=quipu.auth())
    assert r.status_code == 200, r.text


async def test_every_protected_operation_refuses_a_call_without_a_key(quipu: Running) -> None:
    doc = await _document(quipu)
    walked = 0
    for path, method, op in _operations(doc):
        if path in UNPROTECTED:
            continue
        # Authentication comes first: no required query parameter, no body, even a body that is not JSON.
        url = _concrete(path, op)
        for headers in ({}, {"Authorization": "Bearer qk_not-a-key"}):
            r = await quipu.client.request(method.upper(), url, headers=headers)
            label = f"{method.upper()} {url} {headers}"
            assert r.status_code == 401, f"{label}: {r.status_code} {r.text[:200]}"
            r = await quipu.client.request(
                method.upper(), url, headers={**headers, "Content-Type": "text/plain"}, content=b"\x00{"
            )
            assert r.status_code == 401, f"{label}: {r.status_code} {r.text[:200]}"
            assert r.headers["content-type"] == PROBLEM, label
            assert r.json()["status"] == 401 and r.headers["www-authenticate"].startswith("Bearer"), label
        walked += 1
    assert walked == len(_operations(doc)) - len(UNPROTECTED)
    for path in UNPROTECTED:
        assert (await quipu.client.get(path)).status_code == 200, path


async def test_a_key_without_the_scope_gets_a_403_problem(quipu: Running) -> None:
    reader = quipu.auth("acme-reader")
    note = {"title": "t", "content": "c", "note_type": "fact"}
    r = await quipu.client.post("/api/v1/notes", json=note, headers=reader)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert (await quipu.client.get("/api/v1/notes", headers=reader)).status_code == 200


async def test_malformed_ids_and_unknown_routes_are_problems(quipu: Running) -> None:
    for url in ("/api/v1/workflows/not-a-uuid", "/api/v1/executions/123/state", "/api/v1/nothing-here", "/nope"):
        r = await quipu.client.get(url, headers=quipu.auth())
        assert r.status_code == 404, url
        assert r.headers["content-type"] == PROBLEM, url
        assert r.json()["status"] == 404 and r.json()["instance"] == url


async def test_options_and_405_agree_with_the_document(quipu: Running) -> None:
    doc = await _document(quipu)
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in METHODS if m in item} | {"OPTIONS"}
        url = _concrete(path, next(item[m] for m in METHODS if m in item))
        options = await quipu.client.options(url)
        assert options.status_code == 204, url
        allowed = {m.strip() for m in options.headers["allow"].split(",")}
        assert allowed == documented, f"OPTIONS {url}: {allowed} != {documented}"
        missing = next(m for m in ("PATCH", "PUT", "DELETE", "POST", "TRACE") if m not in documented)
        refused = await quipu.client.request(missing, url, headers=quipu.auth())
        assert refused.status_code == 405, f"{missing} {url}"
        assert refused.headers["content-type"] == PROBLEM
        assert {m.strip() for m in refused.headers["allow"].split(",")} == allowed, url


async def test_docs_load_nothing_from_outside(quipu: Running) -> None:
    page = await quipu.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    assert "/docs/openapi.json" in page.text or '"openapi"' in page.text
    for source in sources:
        asset = await quipu.client.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    assert (await quipu.client.get("/docs/assets/LICENSE")).status_code == 404
