"""Quipu's Python client: typed calls to every resource, and the worker helper.

    from quipu_client import QuipuClient
    from quipu_client.worker import Task, run, worker
"""

from quipu_client.client import AsyncQuipuClient, QuipuClient
from quipu_client.errors import (
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    PreconditionFailed,
    Problem,
    ProblemError,
    QuipuConnectionError,
    QuipuError,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from quipu_client.models.page import Page
from quipu_client.sse import ServerEvent
from quipu_client.transport.common import RetryPolicy

__all__ = [
    "AsyncQuipuClient",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "MethodNotAllowed",
    "NotFound",
    "NotSupported",
    "Page",
    "PayloadTooLarge",
    "PreconditionFailed",
    "Problem",
    "ProblemError",
    "QuipuClient",
    "QuipuConnectionError",
    "QuipuError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServerEvent",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "ValidationFailed",
]
