"""schemathesis over the whole OpenAPI document: no operation ever answers 5xx.

Every operation is fuzzed with schema-conforming (positive) and schema-violating (negative)
requests, each mode twice: once with random path ids (mostly 404s, which exercise parameter
parsing and the error paths) and once with the ids of real resources seeded first, so the
handlers, commands and read-model queries behind them run on fuzzed input too. Only server
errors fail the test; whether a 4xx is the documented one is another test's business.

The example count per operation and mode is QUIPU_FUZZ_EXAMPLES (small by default so the
test fits in ``make test``; ``make fuzz`` raises it). Excluded: the SSE feed
(``/executions/{id}/events``) and the NDJSON/SSE replay (``/executions/{id}/replay``), which
stream until the client goes away and so cannot be driven one request at a time here (they
have tests of their own); the WebSocket ``/ws`` is not an OpenAPI operation at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from api.app import create_app
from tests.integration.conftest import Running
from tests.integration.servers import serving

EXAMPLES = int(os.environ.get("QUIPU_FUZZ_EXAMPLES", "25"))
STREAMING = ("/executions/{execution_id}/events", "/executions/{execution_id}/replay")
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


def _fuzz(base_url: str, token: str, seeded: dict[str, str], examples: int) -> dict[str, Any]:
    """The client side, in a process of its own (``python -m`` this module): schemathesis and
    requests are synchronous and CPU-hungry, and the server needs the test's event loop."""
    schema = schemathesis.openapi.from_url(f"{base_url}/docs/openapi.json")
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    found: dict[str, Any] = {"calls": 0, "server_errors": []}
    run = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every 5xx is recorded as found
        suppress_health_check=list(HealthCheck),
    )
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid OpenAPI
        operation = result.ok()
        if operation.path.endswith(STREAMING):
            continue
        names = {p.name for p in operation.path_parameters}
        fixed = {name: seeded[name] for name in names if name in seeded}
        variants: list[dict[str, Any] | None] = [None, fixed] if fixed else [None]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for path_parameters in variants:
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

                @run
                @given(case=strategy)
                def check(case: schemathesis.Case[Any]) -> None:
                    try:
                        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
                    except CLIENT_SIDE:
                        return  # requests refused to send it (e.g. a NUL in a header): nothing reached us
                    found["calls"] += 1
                    if response.status_code >= 500:
                        found["server_errors"].append(
                            f"{response.status_code} {case.operation.label}: {case.as_curl_command()}\n"
                            f"  -> {response.text[:300]}"
                        )

                with contextlib.suppress(Unsatisfiable):  # nothing here can be made invalid (no parameters)
                    check()
    return found


async def test_no_operation_answers_a_server_error(quipu: Running) -> None:
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
    print(f"fuzzed {found['calls']} requests in {time.monotonic() - started:.0f} s ({EXAMPLES} examples per variant)")
    assert found["calls"] > 100
    assert not found["server_errors"], "\n".join(found["server_errors"][:30])


if __name__ == "__main__":
    print(json.dumps(_fuzz(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]))))
