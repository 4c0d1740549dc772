"""What the API refuses before any handler runs: bodies that are not JSON (415), JSON nested
deeper than ``MAX_JSON_DEPTH`` (422), NUL characters anywhere in a body, a query or a path
parameter (422, naming the field), and bodies that decode only leniently (``api.strict_body``).

Why here and not in each controller: Postgres ``text`` and ``jsonb`` cannot hold U+0000, so a
NUL that got past the API either failed a query (500) or, worse, was appended to the log and
then parked its event in the projections' dead letters forever. Deep JSON made msgspec raise
``RecursionError`` (500). Both are properties of the raw request, so one check covers every
operation, and it runs before any command can append anything.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from api.strict_body import check_body_types
from domain.errors import FieldProblem, ValidationFailed

# Deep enough for any real workflow definition, state or metadata (they rarely pass 10), far
# below where recursive code (msgspec's decoder, canonical hashing, state diffs) runs out of stack.
MAX_JSON_DEPTH = 64
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_NUL_ESCAPE = b"\\u0000"  # raw NUL bytes are malformed JSON already; only the escape decodes to U+0000
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# Depth does not care which kind of bracket: objects become arrays for the scan (a mismatch is
# malformed JSON, which the decoder refuses without recursing).
_AS_ARRAYS = bytes.maketrans(b"{}", b"[]")
_OPEN = ord("[")


async def check_request(request: Request[Any, Any, State]) -> None:
    """The before-request hook of every HTTP handler (before parameters or the body are parsed)."""
    problems = [*_nul_parameters("query", request.query_params.multi_items())]
    problems += _nul_parameters("path", request.path_params.items())
    if problems:
        raise ValidationFailed(problems)
    if request.method not in BODY_METHODS:
        return
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if not has_body:
        return
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            status_code=415, detail=f"send the body as application/json, not '{media_type or 'no content type'}'"
        )
    # Reads the body within the size limit (413 past it); Litestar keeps it for the handler.
    body = await request.body()
    check_json_body(body)
    check_body_types(request.route_handler, body)  # strictly typed, as the schema reads (api.strict_body)


def check_json_body(body: bytes) -> None:
    """Refuses a JSON body nested deeper than ``MAX_JSON_DEPTH`` or holding U+0000 in any
    string or key; malformed JSON is left to the decoder, which reports it."""
    if too_deep(body):
        raise ValidationFailed(
            [FieldProblem("body", f"JSON is nested deeper than {MAX_JSON_DEPTH} levels", "too_deep")]
        )
    if _NUL_ESCAPE not in body:  # the common case: no escape, no NUL, no decoding here
        return
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return
    paths = list(_nul_paths(value, ""))
    if paths:
        raise ValidationFailed([_nul_problem(path) for path in paths[:20]])


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``. Only C-speed bytes
    operations on the raw body, so 10,000 levels cost microseconds instead of a recursion,
    and a 1 MiB body of small objects about a millisecond."""
    if body.count(b"[") + body.count(b"{") <= limit:  # cannot nest deeper than it has brackets
        return False
    # Drop escaped backslashes, then escaped quotes: every quote left opens or closes a string,
    # so the even pieces between quotes are the structure and the odd ones string contents.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(_AS_ARRAYS, _NOT_BRACKET)
    # Each round removes the innermost pairs (one scan, so pairs it exposes wait for the next):
    # one level of every well-formed branch.
    remaining = brackets
    for _ in range(limit):
        shorter = remaining.replace(b"[]", b"")
        if not shorter:
            return False
        if shorter == remaining:
            break  # mismatched or unclosed brackets: walk them below
        remaining = shorter
    depth = 0
    for byte in brackets:
        depth += 1 if byte == _OPEN else -1
        if depth > limit:
            return True
        if depth < 0:  # malformed: the decoder says so
            return False
    return False


def _nul_parameters(where: str, items: Any) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for name, value in items:
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            problems.append(_nul_problem(f"{where}.{name}"))
    return problems


def _nul_paths(value: Any, path: str) -> Any:
    """The JSON path of every string or key holding U+0000 (as msgspec names fields: ``a.b[0]``)."""
    if isinstance(value, str):
        if "\x00" in value:
            yield path or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if "\x00" in key:
                yield child
            else:
                yield from _nul_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}[{index}]")


def _nul_problem(field: str) -> FieldProblem:
    # The field is named with the NUL shown as \u0000, so the answer itself stays printable.
    return FieldProblem(field.replace("\x00", "\\u0000"), "must not contain NUL (U+0000) characters", "nul_character")
