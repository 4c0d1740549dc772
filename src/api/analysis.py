"""/api/v1/analysis: validate and inspect a definition without storing it (jsondagapi reference)."""

from __future__ import annotations

import anyio.to_thread
import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.auth import Principal
from api.context import ApiContext
from api.definitions import AnalysisInput
from api.problems import FieldError
from domain.errors import ValidationFailed
from domain.workflow_analysis import Inspection, inspect, problems
from domain.workflow_graph import WorkflowDefinition


async def _callbacks(ctx: ApiContext, principal: Principal, definition: WorkflowDefinition) -> set[str] | None:
    """The tenant's registered callbacks among those the definition names (from the log)."""
    return await anyio.to_thread.run_sync(lambda: ctx.workflows.callbacks_for(principal.tenant_id, definition))


class Validation(msgspec.Struct):
    valid: bool
    errors: list[FieldError]


class AnalysisController(Controller):
    path = "/api/v1/analysis"
    tags = ["analysis"]

    @post("/validate", operation_id="validateWorkflow", status_code=200)
    async def validate(
        self, data: JSONBody[AnalysisInput], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Validation:
        """Every problem at once, each with a field path and a code; nothing is stored. The
        body is the definition (``{"nodes": [...], "edges": [...]}``) or a create body's
        ``{"definition": {...}}``."""
        try:
            definition = data.canonical()
        except ValidationFailed as error:
            found = error.problems
        else:
            known = await _callbacks(ctx, principal, definition)
            found = data.named(problems(definition, ctx.workflows.agent_types, callbacks=known))
        return Validation(not found, [FieldError(p.field, p.message, p.code) for p in found])

    @post("/inspect", operation_id="inspectWorkflow", status_code=200)
    async def inspect(
        self, data: JSONBody[AnalysisInput], ctx: NamedDependency[ApiContext], principal: NamedDependency[Principal]
    ) -> Inspection:
        """Counts, depth, decision and approval nodes, entries, exits and the critical path.
        An invalid definition is answered with 422 and its problems. The body is the definition
        or ``{"definition": {...}}``, as for ``/validate``."""
        definition = data.canonical()
        known = await _callbacks(ctx, principal, definition)
        found = data.named(problems(definition, ctx.workflows.agent_types, callbacks=known))
        if found:
            raise ValidationFailed(found)
        return inspect(definition)
