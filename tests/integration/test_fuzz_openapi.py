"""schemathesis over the whole OpenAPI document with every check (the CLI's ``--checks all``).

Every operation runs schemathesis's three phases as its pytest integration does (the
document's examples, the coverage phase's boundary and missing-value cases, then fuzzing with
schema-conforming and schema-violating requests), twice: once with random path ids (mostly
404s, which exercise parameter parsing and the error paths) and once with the ids of real
resources seeded first, so the handlers, commands and read-model queries behind them run on
fuzzed input too. Each answer is held to all of schemathesis's checks: no 5xx, only documented
status codes, content types and headers, bodies that match their schemas, schema-valid
requests accepted and schema-violating ones refused, 405 with ``Allow`` for undocumented
methods, ``OPTIONS`` consistent with the document, and authentication enforced (a probe
without the key and with a wrong one must be refused). A schema-valid request may still be
refused with a 422 by a rule JSON Schema cannot state (a graph's cycles, contradicting
options, state): only when every field error names its rule with a code of its own that the
operation's description lists (``api.openapi_rules``); and with a 413 past the server's body
size limit, which is a setting, not a schema.

Checks that find nothing to check here, and why: ``use_after_free`` and
``ensure_resource_availability`` judge sequences of calls and only act in schemathesis's
stateful phase, which needs OpenAPI links the document does not have (Litestar emits none);
``object_level_authorization`` needs a second tenant's credentials configured in schemathesis
(another tenant's ids are 404, tested in test_api_conventions); ``max_response_time`` is
off unless a limit is configured. They are passed anyway, so they act if that changes.

One generation setting differs from schemathesis's default: no U+0000 in generated strings.
Postgres ``text``/``jsonb`` cannot hold it, so the API refuses it anywhere with a 422 naming
the field (api.input_limits, tested in test_input_limits); saying so in the schema would need
a pattern on every string of the document.

The example count per operation and mode is QUIPU_FUZZ_EXAMPLES (small by default so the
test fits in ``make test``; ``make fuzz`` raises it). Excluded: the SSE feed
(``/executions/{id}/events``), an agent's inbox (``/agents/{id}/inbox``) and the NDJSON/SSE
replay (``/executions/{id}/replay``), which
stream until the client goes away (or for as long as ``pace`` stretches the recorded gaps) and
so cannot be driven one request at a time here (they have tests of their own); the WebSocket
``/ws`` is not an OpenAPI operation at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.generation.overrides import Override
from schemathesis.openapi.checks import RejectedPositiveData

from api.app import create_app
from tests.integration.conftest import Running
from tests.integration.servers import serving

# The coverage phase sends a few hundred cases per operation whatever the count: 5 fuzzed
# examples per variant on top keep `make test` near 70 s.
EXAMPLES = int(os.environ.get("QUIPU_FUZZ_EXAMPLES", "5"))
# `make test` draws the same cases every run (a failure there is reproducible); `make fuzz` explores.
DERANDOMIZE = "QUIPU_FUZZ_EXAMPLES" not in os.environ
STREAMING = ("/executions/{execution_id}/events", "/executions/{execution_id}/replay", "/agents/{agent_id}/inbox")
CLIENT_SIDE = (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, UnicodeError)


async def _seed(q: Running) -> dict[str, str]:
    """Real resources of the fuzzing tenant, so fuzzed requests reach past the 404."""
    c, h = q.client, q.auth()

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await c.post(f"/api/v1{path}", json=body, headers=h)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    definition = {"nodes": [{"id": "a"}, {"id": "b"}], "edges": [{"from": "a", "to": "b"}]}
    wf = await post("/workflows", {"name": "fuzz", "definition": definition})
    ex = await post("/executions", {"workflow_id": wf["id"], "input": {"q": 1}})
    cp = await post(f"/executions/{ex['id']}/checkpoints", {"label": "fuzz"})
    trajectory = await post("/trajectories", {"name": "fuzz"})
    scope = await post("/scopes", {"trajectory_id": trajectory["trajectory_id"], "name": "s", "token_budget": 1000})
    turn = await post("/turns", {"scope_id": scope["scope_id"], "role": "user", "content": "hi"})
    art = await post(
        "/artifacts", {"name": "a", "artifact_type": "fact", "content": "x", "extraction_method": "explicit"}
    )
    note = await post("/notes", {"title": "t", "content": "c", "note_type": "fact"})
    parts = [
        {"entity_type": "note", "entity_id": note["note_id"], "role": "source"},
        {"entity_type": "artifact", "entity_id": art["artifact_id"], "role": "target"},
    ]
    provenance = {"extraction_method": "inferred"}
    edge = await post("/edges", {"edge_type": "relates_to", "participants": parts, "provenance": provenance})
    return {
        "workflow_id": wf["id"],
        "execution_id": ex["id"],
        "checkpoint_id": cp["checkpoint_id"],
        "event_id": cp["checkpoint_id"],
        "trajectory_id": trajectory["trajectory_id"],
        "scope_id": scope["scope_id"],
        "turn_id": turn["turn_id"],
        "artifact_id": art["artifact_id"],
        "note_id": note["note_id"],
        "edge_id": edge["edge_id"],
        "entity_id": note["note_id"],
        "node_id": "a",
    }


def _real_references(case: schemathesis.Case[Any], seeded: dict[str, str]) -> None:
    """What a schema cannot say about a request, made true before it is sent: a fresh
    ``Idempotency-Key`` per request (a reused key with another body is refused with 422 by
    design), and ``caused_by`` naming an event that exists (an unknown one is refused with 422)."""
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    if isinstance(case.body, dict) and isinstance(case.body.get("caused_by"), list):
        case.body["caused_by"] = [seeded["event_id"] if _is_uuid(c) else c for c in case.body["caused_by"]]


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _rule_codes(response: requests.Response) -> set[str] | None:
    """The field error codes of a 422 from rules the decoder does not check (JSON Schema cannot
    say them): rules across fields (two forms of a body, contradicting options), of a graph
    (edges name existing nodes, no cycles) or against stored state. None when it is not one:
    another status, or a refusal by the decoder (code ``invalid``), which the schema should
    have foreseen."""
    if response.status_code != 422:
        return None
    codes = {str(e.get("code")) for e in response.json().get("errors") or [{"code": "invalid"}]}
    return None if "invalid" in codes else codes


def _not_yet_applied(response: requests.Response) -> bool:
    """The documented "not yet" of ``?min_position`` (api.read_freshness): a fuzzed position
    the log has reached but a read model had not applied within the wait (the memory-search
    projector embeds slowly). A 503, and so a "server error" to schemathesis, but the answer
    the document promises, with ``Retry-After``."""
    if response.status_code != 503 or "retry-after" not in response.headers:
        return False
    return str(response.json().get("type", "")).endswith("/not_yet_applied")


def _undocumented(codes: set[str], operation: Any) -> set[str]:
    """The codes the operation's description does not name (as `code`): a rule a client cannot
    learn from the document is a gap like any other."""
    description = str(operation.definition.raw.get("description") or "")
    return {code for code in codes if f"`{code}`" not in description}


def _fuzz(base_url: str, token: str, seeded: dict[str, str], examples: int) -> dict[str, Any]:
    """The client side, in a process of its own (``python -m`` this module): schemathesis and
    requests are synchronous and CPU-hungry, and the server needs the test's event loop."""
    schema = schemathesis.openapi.from_url(f"{base_url}/docs/openapi.json")
    # No U+0000, and the key is ours to send (the ignored_auth check probes without it): see the docstring.
    schema.config.generation.update(allow_x00=False, with_security_parameters=False)
    # A body over the size limit is refused with 413, which schemathesis does not count as a refusal.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    # An If-Match that does not name the current version is well formed but stale: 412, as RFC 9110 says.
    acceptance = schema.config.checks.positive_data_acceptance
    acceptance.expected_statuses = [*acceptance.expected_statuses, "412"]
    # The body size limit is the server's setting (256 KiB in these tests), not a schema's: a
    # schema-valid body over it is refused with the documented 413, as a request over the rate
    # limit is with 429.
    acceptance.expected_statuses = [*acceptance.expected_statuses, "413"]
    load_all_checks()
    checks = list(CHECKS.get_all())
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    transport = {"base_url": base_url, "session": session, "headers": headers, "timeout": 30}
    found: dict[str, Any] = {"calls": 0, "failures": {}, "domain_rules": 0}
    run = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is recorded as found
        suppress_health_check=list(HealthCheck),
    )
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid OpenAPI
        operation = result.ok()
        if operation.path.endswith(STREAMING):
            continue
        names = {p.name for p in operation.path_parameters}
        fixed = {name: seeded[name] for name in names if name in seeded}
        for path_parameters in [{}, fixed] if fixed else [{}]:

            def check(case: schemathesis.Case[Any]) -> None:
                _real_references(case, seeded)
                try:
                    response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
                except CLIENT_SIDE:
                    return  # requests refused to send it (e.g. a NUL in a header): nothing reached us
                found["calls"] += 1
                try:
                    case.validate_response(response, checks=checks, headers=headers, transport_kwargs=transport)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        if _not_yet_applied(response):
                            continue
                        key = f"{case.operation.label}: {failure.title}"
                        codes = _rule_codes(response) if isinstance(failure, RejectedPositiveData) else None
                        if codes is not None:
                            missing = _undocumented(codes, case.operation)
                            if not missing:
                                found["domain_rules"] += 1
                                continue
                            key = f"{case.operation.label}: 422 codes its description does not name: {sorted(missing)}"
                        found["failures"].setdefault(
                            key,
                            f"{failure.message[:400]}\n  {case.as_curl_command()}\n  -> {response.status_code} "
                            f"{response.text[:300]}",
                        )

            config = HypothesisTestConfig(
                project=schema.config,
                modes=list(HypothesisTestMode),  # examples, coverage and fuzzing, as @schema.parametrize()
                settings=run,
                override=Override(path_parameters=path_parameters),
            )
            with contextlib.suppress(Unsatisfiable):  # nothing here can be made invalid (no parameters)
                create_test(operation=operation, test_func=check, config=config)()
    if os.environ.get("QUIPU_FUZZ_REPORT"):  # every failure, for `make fuzz` (the assertion shows 40)
        Path(os.environ["QUIPU_FUZZ_REPORT"]).write_text(json.dumps(found["failures"], indent=1))
    return found


async def test_every_answer_passes_every_schemathesis_check(quipu: Running) -> None:
    seeded = await _seed(quipu)
    started = time.monotonic()
    async with serving(create_app(quipu.ctx)) as url:
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            url,
            quipu.keys["acme"],
            json.dumps(seeded),
            str(EXAMPLES),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await client.communicate()
        finally:
            if client.returncode is None:  # the test timed out or was interrupted
                client.kill()
                await client.wait()
    assert client.returncode == 0, f"the fuzzing client failed:\n{err.decode()[-3000:]}"
    found = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"fuzzed {found['calls']} requests in {time.monotonic() - started:.0f} s ({EXAMPLES} examples per variant); "
        f"{found['domain_rules']} schema-valid requests refused by a rule the schema cannot state"
    )
    assert found["calls"] > 100
    failures = [f"{key}\n  {detail}" for key, detail in found["failures"].items()]
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:40])


if __name__ == "__main__":
    print(json.dumps(_fuzz(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))))
