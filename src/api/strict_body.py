"""JSON bodies decoded as strictly as their schema reads.

Litestar converts a handler's ``data`` with msgspec in lax mode (``strict=False``), which it
needs for query strings and headers but which also takes ``0`` for ``false``, ``"5"`` for ``5``
and a number of seconds for a date-time in a JSON body: requests the OpenAPI document calls
invalid were accepted, and what a client sent was not what was stored. Litestar has no switch
for that, so the before-request hook (``api.input_limits``) decodes each JSON body once more,
strictly, against the handler's own ``data`` annotation (constraints included); a body that
passes is one Litestar's lax conversion turns into the same value. One coercion stays, because
JSON Schema allows it: a number with no fractional part (``5.0``) is an integer. The refusal is msgspec's
``ValidationError``, which ``api.problems`` answers as every other body error: 422 naming the
field, code ``invalid``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.handlers import BaseRouteHandler

_types: dict[BaseRouteHandler, Any] = {}
_NO_BODY = object()


def check_body_types(handler: BaseRouteHandler, body: bytes) -> None:
    """Raises ``msgspec.ValidationError`` if ``body`` does not convert strictly to the handler's
    ``data``; malformed JSON is left to Litestar's decoder, which reports it (400)."""
    kind = _data_type(handler)
    if kind is _NO_BODY or not body.strip():
        return  # no JSON body taken, or none sent (an optional body; a required one Litestar refuses)
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return
    msgspec.convert(_integral(value), kind, strict=True)


def _data_type(handler: BaseRouteHandler) -> Any:
    if handler not in _types:
        data = handler.parsed_fn_signature.parameters.get("data")
        # ``raw`` keeps Annotated's msgspec.Meta (bounds of a list body); msgspec ignores Litestar's markers.
        _types[handler] = _NO_BODY if data is None else data.raw
    return _types[handler]


def _integral(value: Any) -> Any:
    """``value`` with every whole float as an int (a float field takes an int as well); the
    depth is bounded by ``api.input_limits``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value
