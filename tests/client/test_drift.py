"""The client cannot drift from the server: its models and resource methods are what
client/scripts/generate.py makes of the running server's OpenAPI document.

Regenerating reads only schemas (field names, types, which are required, parameters, what
each operation answers), so a reworded or better-documented document passes; a changed
field, type, required-ness, parameter or answer fails here until the client is regenerated.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec

from tests.client.conftest import Served

CLIENT = Path(__file__).resolve().parents[2] / "client"
PACKAGE = CLIENT / "src" / "quipu_client"
# Operations the client does not wrap, and why.
NOT_WRAPPED: dict[str, str] = {}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quipu_client_generate", CLIENT / "scripts" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


async def _document(served: Served) -> dict[str, Any]:
    response = await served.quipu.client.get("/docs/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = msgspec.json.decode(response.content)
    return document


async def test_the_generated_client_matches_the_servers_document(served: Served, tmp_path: Path) -> None:
    document = await _document(served)
    generated: dict[str, str] = _generator().generate(document)
    stale = []
    for relative, text in sorted(generated.items()):
        path = PACKAGE / relative
        current = path.read_text() if path.exists() else ""
        if current != text:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), str(path), "generated", lineterm="")
            stale.append("\n".join(list(diff)[:40]))
    if stale:  # leave the document where the command below finds it
        saved = tmp_path / "openapi.json"
        saved.write_bytes(msgspec.json.encode(document))
        regenerate = f".venv/bin/python client/scripts/generate.py {saved}"
        raise AssertionError(f"the client drifted from the server; regenerate it: {regenerate}\n" + "\n".join(stale))


async def test_every_operation_of_the_document_is_in_the_client(served: Served) -> None:
    operations = {
        op["operationId"]
        for item in (await _document(served))["paths"].values()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }
    wrapped = set(_generator().OPERATIONS)
    assert operations - wrapped - set(NOT_WRAPPED) == set()
    assert wrapped - operations == set()  # a renamed operation is caught too


def test_models_decode_what_they_encode() -> None:
    """Generated request models leave out what the caller did not set (the server's defaults
    apply) and send JSON names that are not Python names under their JSON name."""
    from quipu_client.models import DefinitionInput, Node, WorkflowEdge, WorkflowWrite

    definition = DefinitionInput(nodes=[Node(id="a"), Node(id="b")], edges=[WorkflowEdge(from_="a", to="b")])
    body = WorkflowWrite(name="w", definition=definition)
    sent = msgspec.json.decode(msgspec.json.encode(body))
    assert sent == {
        "name": "w",
        "definition": {"nodes": [{"id": "a"}, {"id": "b"}], "edges": [{"from": "a", "to": "b"}]},
    }
