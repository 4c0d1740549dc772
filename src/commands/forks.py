"""Application service for branches: resume from a checkpoint, play from a node, and
counterfactual runs. Each loads the run it forks, decides what the branch
carries (domain.forking), and saves a new execution; the original is never touched."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from commands.store import EventStore
from domain.aggregate import CommandContext
from domain.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from domain.execution import Execution
from domain.forking import CarriedNode, ForkMode, ForkOrigin, carried_nodes, downstream, replace_outputs
from domain.ids import uuid7
from domain.scheduling import NodeStatus, merge_output, taken_edges


class ForkService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def resume(
        self,
        ctx: CommandContext,
        execution_id: UUID,
        checkpoint_id: UUID,
        *,
        modified_state: dict[str, Any] | None = None,
        skip_failed_node: bool = False,
        name: str | None = None,
        hypothesis: str | None = None,
    ) -> Execution:
        """A branch that starts at the checkpoint: what had finished there is carried."""
        latest = self._load(ctx, execution_id)
        ref = latest.checkpoints.get(checkpoint_id)
        if ref is None:
            raise NotFound(f"checkpoint {checkpoint_id} not found in execution {execution_id}")
        at = self._load(ctx, execution_id, ref.version)
        carried = _carried(at)
        state = dict(at.state)
        skipped = None
        if skip_failed_node:
            skipped = next((n for n, s in latest.nodes.items() if s is NodeStatus.FAILED), None)
            if skipped is None:
                raise Conflict("the execution has no failed node to skip")
            state = merge_output(state, skipped, {})
            targets = sorted(t for _, t in taken_edges(at.definition, skipped, state))
            carried = [c for c in carried if c.node_id != skipped]
            carried.append(CarriedNode(node_id=skipped, status="succeeded", targets=targets))
        return self._branch(ctx, at, "resume", checkpoint_id, carried, state, modified_state, name, hypothesis, skipped)

    def play_from_node(
        self,
        ctx: CommandContext,
        execution_id: UUID,
        node_id: str,
        *,
        modified_state: dict[str, Any] | None = None,
        name: str | None = None,
        hypothesis: str | None = None,
    ) -> Execution:
        """A branch from the moment just before ``node_id`` was first scheduled."""
        latest = self._load(ctx, execution_id)
        latest.node(node_id)  # 404 for a node the workflow does not have
        version = latest.first_scheduled.get(node_id)
        if version is None:
            raise Conflict(f"node '{node_id}' never ran in this execution; play from a node that ran")
        at = self._load(ctx, execution_id, version - 1)
        assert at.last_event_id is not None
        carried = _carried(at)
        return self._branch(
            ctx, at, "play_from_node", at.last_event_id, carried, dict(at.state), modified_state, name, hypothesis
        )

    def counterfactual(
        self,
        ctx: CommandContext,
        execution_id: UUID,
        outputs: dict[str, dict[str, Any]],
        *,
        name: str | None = None,
        hypothesis: str | None = None,
    ) -> Execution:
        """A branch where the recorded output of some nodes is replaced; only what depends
        on them runs again."""
        latest = self._load(ctx, execution_id)
        problems = [
            FieldProblem(f"outputs.{n}", f"node '{n}' did not succeed in this execution", "not_succeeded")
            for n in outputs
            if latest.nodes.get(n) is not NodeStatus.SUCCEEDED
        ]
        if not outputs or problems:
            raise ValidationFailed(problems or [FieldProblem("outputs", "name at least one node", "empty")])
        rerun = downstream(latest.definition, outputs) - set(outputs)
        kept = _carried(latest, exclude=rerun)
        carried, state = replace_outputs(latest.definition, latest.input, kept, outputs)
        assert latest.last_event_id is not None
        return self._branch(
            ctx,
            latest,
            "counterfactual",
            latest.last_event_id,
            carried,
            state,
            None,
            name,
            hypothesis,
            replaced=sorted(outputs),
        )

    # -- helpers -------------------------------------------------------------------------------------
    def _load(self, ctx: CommandContext, execution_id: UUID, version: int | None = None) -> Execution:
        execution = self._store.load(Execution, execution_id, ctx.tenant_id, version=version)
        # A deleted run is 404 to every command, forks included; its past versions stay readable
        # (each fork loads the run as it is now first, so this refuses the fork).
        if version is None and execution.deleted:
            raise NotFound(f"execution {execution_id} was deleted")
        return execution

    def _branch(
        self,
        ctx: CommandContext,
        source: Execution,
        mode: ForkMode,
        from_event_id: UUID,
        carried: list[CarriedNode],
        state: dict[str, Any],
        modified_state: dict[str, Any] | None,
        name: str | None,
        hypothesis: str | None,
        skipped_failed: str | None = None,
        *,
        replaced: list[str] | None = None,
    ) -> Execution:
        origin = ForkOrigin(
            execution_id=source.id,
            from_event_id=from_event_id,
            mode=mode,
            name=name,
            hypothesis=hypothesis,
            replaced=replaced or [],
            skipped_failed=skipped_failed,
        )
        if modified_state:
            state = {**state, **modified_state}
        branch = Execution.fork_from(ctx, source, execution_id=uuid7(), origin=origin, carried=carried, state=state)
        self._store.save_all(branch)
        return branch


def _carried(ex: Execution, exclude: set[str] | None = None) -> list[CarriedNode]:
    outputs = ex.state.get("outputs")
    return carried_nodes(
        ex.nodes,
        ex.completion_events,
        outputs if isinstance(outputs, dict) else {},
        ex.taken,
        ex.completion_events,
        exclude=exclude or set(),
    )
