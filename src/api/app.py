"""The Litestar application: controllers, problem details, auth, logging, OpenAPI."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Histogram

from api.admin import AdminController, HealthController
from api.agent_types import AgentTypeController
from api.agents import AgentController
from api.analysis import AnalysisController
from api.api_keys import ApiKeyController
from api.approvals import ApprovalController, ExecutionApprovalsController
from api.artifacts import ArtifactController
from api.auth import authentication_guard, provide_principal
from api.branches import BranchController
from api.callbacks import CallbackController
from api.checkpoint_compare import CheckpointCompareController
from api.checkpoints import CheckpointController
from api.context import ApiContext
from api.delegations import DelegationController
from api.edges import EdgeController
from api.event_dag import EventDagController
from api.event_graph import EventGraphController
from api.execution_insights import ExecutionInsightsController
from api.executions import ExecutionController
from api.explorer.controller import ExplorerController
from api.forks import ForkController
from api.handoffs import HandoffController
from api.inbox import InboxController
from api.input_limits import check_request
from api.live_controller import LiveController
from api.locks import LockController
from api.log_position_header import LogPositionHeader
from api.messages import MessageController
from api.node_reports import NodeReportController
from api.notes import NoteController
from api.openapi import describe, openapi_config
from api.openapi_msgspec import MsgspecSchemas
from api.options_allow import OptionsAllow
from api.problems import handle_exception
from api.provenance import ProvenanceController
from api.rate_limit import RateLimiter
from api.read_freshness import wait_for_min_position
from api.run_forensics import RunForensicsController
from api.scopes import ScopeController
from api.search import SearchController
from api.steps import StepController
from api.summarization import SummarizationPolicyController, SummarizationRequestController
from api.tenants import TenantController
from api.time_travel import TimeTravelController
from api.trajectories import TrajectoryController
from api.turns import TurnController
from api.workers import WorkerController
from api.workflow_parts import WorkflowPartsController
from api.workflows import WorkflowController

log = structlog.get_logger(__name__)
REQUEST_SECONDS = Histogram("quipu_http_request_seconds", "HTTP request latency", ["method", "status"])


class RequestContextMiddleware:
    """Binds a request id to every log line of the request and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        request_id = headers.get(b"x-request-id", b"").decode()[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            REQUEST_SECONDS.labels(scope.get("method", "WS"), str(status)).observe(elapsed)
            log.info(
                "http_request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


def create_app(ctx: ApiContext, *, debug: bool = False) -> Litestar:
    async def provide_ctx() -> ApiContext:
        return ctx

    def _exc(request: Request[Any, Any, State], exc: Exception) -> Any:
        return handle_exception(request, exc)

    async def before_request(request: Request[Any, Any, State]) -> Any:
        await check_request(request)
        return await wait_for_min_position(request, ctx)  # ?min_position (api.read_freshness)

    app = Litestar(
        route_handlers=[
            WorkflowController,
            WorkflowPartsController,
            AnalysisController,
            CallbackController,
            ExecutionController,
            NodeReportController,
            LiveController,
            ExecutionInsightsController,
            TimeTravelController,
            RunForensicsController,
            CheckpointController,
            CheckpointCompareController,
            ForkController,
            BranchController,
            StepController,
            ApprovalController,
            ExecutionApprovalsController,
            EventDagController,
            EventGraphController,
            ArtifactController,
            NoteController,
            ProvenanceController,
            EdgeController,
            TrajectoryController,
            ScopeController,
            TurnController,
            SearchController,
            AgentController,
            AgentTypeController,
            LockController,
            MessageController,
            DelegationController,
            HandoffController,
            InboxController,
            ApiKeyController,
            TenantController,
            SummarizationPolicyController,
            SummarizationRequestController,
            AdminController,
            HealthController,
            WorkerController,
            ExplorerController,  # /ui, not in the OpenAPI document
        ],
        dependencies={"ctx": Provide(provide_ctx), "principal": Provide(provide_principal)},
        guards=[authentication_guard(ctx)],  # 401/403 before any parameter or body is parsed
        exception_handlers={Exception: _exc},
        before_request=before_request,  # 415, 413, NUL, JSON depth (api.input_limits), then ?min_position
        middleware=[
            DefineMiddleware(RequestContextMiddleware),
            DefineMiddleware(LogPositionHeader),  # Quipu-Log-Position on command responses
            DefineMiddleware(RateLimiter, per_minute=ctx.rate_limit_per_minute),
            DefineMiddleware(OptionsAllow),
        ],
        openapi_config=openapi_config(),
        plugins=[MsgspecSchemas()],  # request schemas as msgspec states them (api.openapi_msgspec)
        request_max_body_size=ctx.max_body_bytes,
        debug=debug,
        # quipu.logging configures logging (one format for every line); Litestar's default
        # config would replace the root logger's handler with a plain-text one.
        logging_config=None,
    )
    describe(app)
    return app
