"""The 422 field error codes of rules a schema cannot state, named in each operation's description.

A body or a query can be well-formed by the schema and still break a rule across fields (two
forms of a body mixed, options that contradict), of a graph (edges name existing nodes, no
cycles) or against stored state (an id of this tenant, a node that succeeded). Such a 422
carries a code naming the rule; the decoder's own refusals carry ``invalid`` (the schema says
those). ``describe`` appends the table of an operation's codes to its description, so a client
learns them from the document (test_fuzz_openapi holds every such 422 to it).
"""

from __future__ import annotations

_DEFINITION = {
    "invalid_form": "send either `nodes` (and `edges`) or `steps`, not both or neither",
    "empty": "a workflow needs at least one node",
    "duplicate_id": "two nodes share an id",
    "dangling_edge": "an edge names a node that does not exist",
    "duplicate_edge": "the same edge twice",
    "cycle": "the edges make a cycle",
    "invalid_duration": "a timeout is not a positive duration (ISO 8601 such as PT5M, or hh:mm:ss)",
    "step_not_a_node": "a step does not make a valid node (its id or timeout)",
    "unreachable": "a node cannot be reached from a start node",
    "invalid_condition": "an edge's condition does not parse",
    "edge_from_end": "an edge leaves an end node",
    "decision_without_conditions": "a decision node has no outgoing edge with a condition",
    "UNKNOWN_CALLBACK": "a node's `callback_id` is not registered for this tenant (`POST /callbacks/register`)",
    "ambiguous": "a node names both a `callback_id` and an `agent_type`",
    "placement": "a `callback_id` on a node that is neither a task nor an external decision",
}
_CALLBACK_NODE = {k: _DEFINITION[k] for k in ("UNKNOWN_CALLBACK", "ambiguous", "placement")}
_AS_OF = {
    "invalid_point": "`as_of` names no point of this run (versions start at 1; an event of another run)",
    "no_version": "`as_of` is a version this run has not reached",
}
_KNOWLEDGE = {
    "required": "`execution_id` and `node_id` go together",
    "unknown": "a source id names nothing of this tenant",
}
_SEARCH = {
    "mode_contradiction": "`mode` contradicts `use_vector_search`",
    "beyond_depth": "`offset` + `limit` past the 1,000th result",
    "blank": "the query is only whitespace",
    "unsupported_filter": "a filter's field and op are not one of those listed",
    "filter_value": "a filter's value is not of its field's type",
    "empty_key": "a `metadata.` path has an empty key",
    "unsearchable": "an entity type this route does not search",
    "unknown_event": "`as_of` is not an event of this tenant",
}

_WRITE = {
    **_DEFINITION,
    "invalid_form": "send either `nodes` (and `edges`) or `steps`, not both or neither; the graph under "
    "`definition` or `nodes`/`edges` at the top, not both; `maxRetries` only with `steps`",
    "required": "no `name`, and no `name` in the definition",
    "edge_ends": "a top-level edge names its ends twice (`from` and `source`) or not at all",
}

RULES: dict[str, dict[str, str]] = {
    "createWorkflow": _WRITE,
    "updateWorkflow": _WRITE,
    "validateWorkflow": _DEFINITION,
    "inspectWorkflow": _DEFINITION,
    "updateWorkflowNode": {"id_mismatch": "the body's `id` is not the node named in the path", **_CALLBACK_NODE},
    "addWorkflowNode": _CALLBACK_NODE,
    "getExecutionStateAsOf": _AS_OF,
    "getWorkflowStateAsOf": _AS_OF,
    "blameExecutionState": {"invalid_pointer": "`path` is not an RFC 6901 JSON pointer (empty, or starting with `/`)"},
    "bisectExecution": {"invalid_condition": "`condition` does not parse in the grammar of edge conditions"},
    "getExecutionTimeline": {
        **_AS_OF,
        "invalid_range": "`start_time` is after `end_time`",
        "unknown_event_type": "an `event_types` entry is not one of the listed types",
    },
    "compareCheckpoints": {
        "ambiguous": "both forms given (`checkpoint_a`/`checkpoint_b` and `a`/`b`)",
        "required": "one side of a form is missing",
    },
    "startCounterfactual": {
        "empty": "`outputs` names no node",
        "not_succeeded": "a node in `outputs` did not succeed in this run",
        "ambiguous": "both `name` and `branch_name`",
    },
    "resumeFromCheckpoint": {"ambiguous": "both `name` and `branch_name`"},
    "playFromNode": {"ambiguous": "both `name` and `branch_name`"},
    "compareBranches": {
        "same": "`a` and `b` are the same execution",
        "ambiguous": "both `a` and `branch_a` (or `b` and `branch_b`)",
        "required": "neither `a` nor `branch_a` (or neither `b` nor `branch_b`)",
    },
    "createArtifact": _KNOWLEDGE,
    "supersedeArtifact": _KNOWLEDGE,
    "createNote": _KNOWLEDGE,
    "supersedeNote": _KNOWLEDGE,
    "traverseEdges": {
        "required": "no start entity (or both `start` and `start_id`)",
        "enum": "a relation that is not an edge type",
    },
    "searchMemory": _SEARCH,
    "searchNotes": _SEARCH,
    "searchArtifacts": _SEARCH,
    "createApiKey": {"invalid_scope": "`scopes` is empty or names an unknown scope"},
    "startExecution": {
        "ambiguous": "both spellings given (`version` and `workflow_version`, or `input` and `inputs`)",
        "unknown_version": "`workflow_version` is not 1.N.0 (jsondagapi's numbering of a workflow's versions)",
    },
    "completeNode": {
        "ambiguous": "both `output` and `outputs`",
        "contradiction": "an `error` without `status` FAILED",
    },
    "decideNode": {
        "ambiguous": "`targets` and `outcome` both given, or neither",
        "unknown_outcome": "the `outcome` is not in the node's `config.outcomes` and names no successor",
        "unknown_target": "a target is not a successor of the decision node",
    },
}


def rules_text(operation_id: str) -> str:
    """The operation's rule codes as a paragraph of its description ("" when it has none)."""
    rules = RULES.get(operation_id)
    if not rules:
        return ""
    listed = "; ".join(f"`{code}`: {meaning}" for code, meaning in rules.items())
    return f"\n\n422 field error codes of rules the schema cannot state: {listed}."
