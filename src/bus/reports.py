"""Worker reports over NATS: the request-reply twin of the HTTP node endpoints.

A worker sends a ``Report`` to ``<prefix>.report.<tenant>``; one Quipu API instance (queue
group) turns it into the same command the HTTP endpoint runs and replies with a
``ReportReply`` (``status`` mirrors the HTTP status: 200, 404, 409, 422). The tenant is the
subject's, and a worker's NATS credentials (``bus.permissions.worker``) let it publish on
its own tenant's subject only; a report naming another tenant's execution is 404. Every
report is counted by its answer (``quipu_worker_reports_total``), so refused ones show.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog
from nats.aio.msg import Msg
from prometheus_client import Counter

from bus.runtime import NatsEndpoint, connect_nats, run_until_stopped
from bus.subjects import Subjects
from bus.summarizer import SUMMARIZATION_NODE
from commands.errors import ConcurrencyConflict
from commands.executions import ExecutionService
from commands.summarization import SummarizationService
from domain.aggregate import CommandContext
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.execution import Execution
from quipu_client.wire import Report, ReportReply

log = structlog.get_logger(__name__)
REPORTS = Counter("quipu_worker_reports_total", "Worker reports received over NATS, by the status answered", ["status"])
_decode = msgspec.json.Decoder(Report).decode
_encode = msgspec.json.Encoder().encode
QUEUE_GROUP = "quipu-reports"


class ReportResponder:
    def __init__(
        self,
        nats_url: NatsEndpoint | str,
        subjects: Subjects,
        executions: ExecutionService,
        summaries: SummarizationService | None = None,
    ) -> None:
        self._nats_url = nats_url
        self._subjects = subjects
        self._executions = executions
        self._summaries = summaries

    async def run(self, stop: asyncio.Event) -> None:
        await run_until_stopped(stop, self._run_once, "report_responder_retrying")

    async def _run_once(self, stop: asyncio.Event) -> None:
        nc = await connect_nats(self._nats_url)
        try:
            await nc.subscribe(self._subjects.all_reports, queue=QUEUE_GROUP, cb=self._on_message)
            log.info("report_responder_started", subject=self._subjects.all_reports)
            await stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await nc.drain()

    async def _on_message(self, msg: Msg) -> None:
        tenant_id = msg.subject.rsplit(".", 1)[-1]
        try:
            report = _decode(msg.data)
        except msgspec.ValidationError as error:
            reply = ReportReply(ok=False, status=422, detail=str(error))
        else:
            reply = await asyncio.to_thread(self.handle, tenant_id, report)
        REPORTS.labels(str(reply.status)).inc()
        if reply.status != 200:
            log.info("worker_report_refused", tenant_id=tenant_id, status=reply.status, detail=reply.detail)
        if msg.reply:
            await msg.respond(_encode(reply))

    def handle(self, tenant_id: str, report: Report) -> ReportReply:
        """Run the report as a command; map domain errors to HTTP-like statuses. A report on
        a summarization task (its node id) goes to the summarization request it names."""
        if self._summaries is not None and report.node_id == SUMMARIZATION_NODE:
            summaries = self._summaries
            try:
                request = summaries.worker_report(
                    tenant_id,
                    report.execution_id,
                    report.type,
                    output=report.output,
                    error=report.error,
                    worker=report.worker,
                )
            except NotFound:
                pass  # not a request: an execution may have a node of that name
            except (Conflict, ConcurrencyConflict) as error:
                return ReportReply(ok=False, status=409, detail=str(error))
            except ValidationFailed as error:
                return ReportReply(ok=False, status=422, detail=str(error))
            else:
                return ReportReply(ok=True, execution_status=request.status, node_status=request.status)
        ctx = CommandContext(tenant_id, f"worker:{report.worker or 'nats'}")
        try:
            execution = self._executions.act(ctx, report.execution_id, lambda e, c: _apply(e, c, report))
        except NotFound as error:
            return ReportReply(ok=False, status=404, detail=str(error))
        except (Conflict, ConcurrencyConflict) as error:
            return ReportReply(ok=False, status=409, detail=str(error))
        except ValidationFailed as error:
            return ReportReply(ok=False, status=422, detail=str(error))
        status = execution.nodes.get(report.node_id)
        node_status = status.value if status else None
        return ReportReply(ok=True, execution_status=execution.status.value, node_status=node_status)


def _apply(execution: Execution, ctx: CommandContext, report: Report) -> None:
    if report.type == "heartbeat":
        execution.heartbeat(ctx, report.node_id, report.attempt, report.worker)
    elif report.type == "complete":
        execution.complete_node(ctx, report.node_id, report.output, report.attempt)
    else:
        execution.fail_node(ctx, report.node_id, report.error or "failed", report.attempt)
