"""Workflow bodies as Agent Studio and Analemma OS write them (copied from their references;
placeholders such as ``[...]`` filled in), each checked by what Quipu made of it."""

from __future__ import annotations

import json
from datetime import datetime

from tests.integration.conftest import Running

# Agent Studio, "Create and Start Workflow": the request body, verbatim
AGENT_STUDIO = """{
  "definition": {
    "id": "customer-analysis-workflow",
    "name": "Customer Feedback Analysis",
    "description": "Analyze customer feedback and generate insights",
    "pattern": "sequential",
    "steps": [
      {
        "id": "step1",
        "name": "Data Collection",
        "agentType": "data-collector",
        "configuration": {
          "source": "feedback_database",
          "limit": 1000
        },
        "timeout": "00:05:00"
      },
      {
        "id": "step2",
        "name": "Sentiment Analysis",
        "agentType": "sentiment-analyzer",
        "dependsOn": ["step1"],
        "configuration": {
          "model": "bert-base",
          "threshold": 0.7
        }
      },
      {
        "id": "step3",
        "name": "Report Generation",
        "agentType": "report-generator",
        "dependsOn": ["step2"],
        "configuration": {
          "format": "pdf",
          "includeCharts": true
        }
      }
    ],
    "timeout": "00:30:00",
    "maxRetries": 3
  },
  "input": {
    "dateRange": {
      "start": "2025-09-01",
      "end": "2025-10-01"
    },
    "categories": ["product", "service", "support"]
  },
  "initiatedBy": "user@example.com"
}"""

# Analemma OS, "Create Workflow": verbatim but for the "[...]" placeholders, filled with nodes
# and an edge as its co-design stream writes them ({"source": ..., "target": ...})
ANALEMMA = """{
  "name": "My Workflow",
  "description": "Workflow description",
  "nodes": [{"id": "node_1", "type": "task", "agent_type": "loader"}, {"id": "node_2", "agent_type": "llm_chat"}],
  "edges": [{"source": "node_1", "target": "node_2"}],
  "category": "automation",
  "visibility": "private"
}"""


async def test_the_agent_studio_definition_names_the_workflow_and_sets_its_limits(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    seed = json.loads(AGENT_STUDIO)
    r = await c.post("/api/v1/workflows", json={"definition": seed["definition"]}, headers=h)
    assert r.status_code == 201, r.text
    wf = r.json()
    assert wf["name"] == "Customer Feedback Analysis"
    assert wf["description"] == "Analyze customer feedback and generate insights"
    assert wf["metadata"] == {"definition_id": "customer-analysis-workflow", "pattern": "sequential"}
    d = wf["definition"]
    assert [(n["id"], n["agent_type"], n["timeout"], n["max_retries"]) for n in d["nodes"]] == [
        ("step1", "data-collector", 300.0, 3),
        ("step2", "sentiment-analyzer", None, 3),
        ("step3", "report-generator", None, 3),
    ]
    assert [(e["from"], e["to"]) for e in d["edges"]] == [("step1", "step2"), ("step2", "step3")]
    assert d["timeout"] == 1800.0
    # a run started without its own limit gets the definition's 30 minutes; input is the state
    r = await c.post("/api/v1/executions", json={"workflow_id": wf["id"], "input": seed["input"]}, headers=h)
    assert r.status_code == 201, r.text
    ex = r.json()
    limit = datetime.fromisoformat(ex["deadline"]) - datetime.fromisoformat(ex["created_at"])
    assert 1799 <= limit.total_seconds() <= 1801
    assert ex["state"]["categories"] == ["product", "service", "support"] and ex["current_nodes"] == ["step1"]
    # step1 fails once and is retried (maxRetries 3), as the seed's tasks say
    r = await c.post(f"/api/v1/executions/{ex['id']}/nodes/step1/fail", json={"error": "db busy"}, headers=h)
    assert r.json()["nodes"]["step1"] == "retrying" and r.json()["status"] == "running"


async def test_agent_studio_defaults_and_refusals(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    # no maxRetries: 3 (the reference's default); a step's own maxRetries wins; sequential
    # without dependsOn runs the steps in their order
    steps = [{"id": "a", "agentType": "x"}, {"id": "b", "agentType": "x", "maxRetries": 0}]
    body = {"definition": {"name": "seq", "pattern": "sequential", "steps": steps}}
    d = (await c.post("/api/v1/workflows", json=body, headers=h)).json()["definition"]
    assert [n["max_retries"] for n in d["nodes"]] == [3, 0] and d["edges"][0]["from"] == "a"
    # Quipu's own nodes keep their default of no retries, and a definition timeout in seconds
    r = await c.post(
        "/api/v1/workflows", json={"name": "own", "definition": {"nodes": [{"id": "a"}], "timeout": 60}}, headers=h
    )
    assert r.json()["definition"]["nodes"][0]["max_retries"] == 0 and r.json()["definition"]["timeout"] == 60
    r = await c.post("/api/v1/executions", json={"workflow_id": r.json()["id"], "timeout_seconds": 5}, headers=h)
    limit = datetime.fromisoformat(r.json()["deadline"]) - datetime.fromisoformat(r.json()["created_at"])
    assert limit.total_seconds() < 10  # the start's own limit wins
    bad = {"definition": {"name": "b", "timeout": "half an hour", "steps": [{"id": "a", "timeout": "00:61:00"}]}}
    r = await c.post("/api/v1/workflows", json=bad, headers=h)
    assert r.status_code == 422
    assert {(e["field"], e["code"]) for e in r.json()["errors"]} == {("definition.timeout", "invalid_duration")}
    r = await c.post("/api/v1/workflows", json={"definition": {"steps": [{"id": "a"}]}}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "required"  # no name anywhere
    r = await c.post("/api/v1/workflows", json={"definition": {"name": "n", "steps": [], "maxRetries": 11}}, headers=h)
    assert r.status_code == 422
    r = await c.post(
        "/api/v1/workflows", json={"name": "n", "definition": {"nodes": [{"id": "a"}], "maxRetries": 2}}, headers=h
    )
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_form"


async def test_the_analemma_body_with_its_graph_at_the_top(quipu: Running) -> None:
    c, h = quipu.client, quipu.auth()
    r = await c.post("/api/v1/workflows", content=ANALEMMA, headers=h | {"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    wf = r.json()
    assert wf["name"] == "My Workflow" and wf["description"] == "Workflow description"
    assert wf["metadata"] == {"category": "automation", "visibility": "private"}
    assert [n["id"] for n in wf["definition"]["nodes"]] == ["node_1", "node_2"]
    assert wf["definition"]["edges"] == [{"from": "node_1", "to": "node_2", "condition": None}]
    got = (await c.get(f"/api/v1/workflows/{wf['id']}", headers=h)).json()
    assert got["definition"] == wf["definition"]
    ex = (await c.post("/api/v1/executions", json={"workflow_id": wf["id"]}, headers=h)).json()
    assert ex["current_nodes"] == ["node_1"]  # the edge orders the run
    # both places, or an edge named twice, are refused
    both = json.loads(ANALEMMA) | {"definition": {"nodes": [{"id": "x"}]}}
    r = await c.post("/api/v1/workflows", json=both, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_form"
    twice = json.loads(ANALEMMA) | {"edges": [{"source": "node_1", "from": "node_1", "target": "node_2"}]}
    r = await c.post("/api/v1/workflows", json=twice, headers=h)
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "edges[0]", "message": "name the ends once: from and to, or source and target", "code": "edge_ends"}
    ]
    r = await c.post("/api/v1/workflows", json=json.loads(ANALEMMA) | {"visibility": "secret"}, headers=h)
    assert r.status_code in (400, 422)
