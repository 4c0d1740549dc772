"""JSON bodies decoded as strictly as their schema reads.

Litestar converts a handler's ``data`` with msgspec in lax mode (``strict=False``), which it
needs for query strings and headers but which also takes ``0`` for ``false``, ``"5"`` for ``5``
and a number of seconds for a date-time in a JSON body: requests the OpenAPI document calls
invalid were accepted, and what a client sent was not what was stored. Litestar has no switch
for that, so the before-request hook (``api.input_limits``) decodes each JSON body once more,
strictly, against the handler's own ``data`` annotation (constraints included); a body that
passes is one Litestar's lax conversion turns into the same value. The refusal is msgspec's
``ValidationError``, which ``api.problems`` answers as every other body error: 422 naming the
field, code ``invalid``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.handlers import BaseRouteHandler

_decoders: dict[BaseRouteHandler, msgspec.json.Decoder[Any] | None] = {}


def check_body_types(handler: BaseRouteHandler, body: bytes) -> None:
    """Raises ``msgspec.ValidationError`` if ``body`` does not decode strictly as the handler's
    ``data``; malformed JSON is left to Litestar's decoder, which reports it (400)."""
    decoder = _decoder(handler)
    if decoder is None or not body.strip():
        return  # no JSON body taken, or none sent (an optional body; a required one Litestar refuses)
    try:
        decoder.decode(body)
    except msgspec.ValidationError:
        raise
    except msgspec.DecodeError:
        return


def _decoder(handler: BaseRouteHandler) -> msgspec.json.Decoder[Any] | None:
    if handler not in _decoders:
        data = handler.parsed_fn_signature.parameters.get("data")
        # ``raw`` keeps Annotated's msgspec.Meta (bounds of a list body); msgspec ignores Litestar's markers.
        _decoders[handler] = None if data is None else msgspec.json.Decoder(data.raw, strict=True)
    return _decoders[handler]
