"""``quipu status``: what ``GET /api/v1/admin/projections`` says, as readable tables.

The report is rendered generically (every field the endpoint returns, lists as counts plus
their entries below the table), so fields the endpoint gains show up without changes here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

PROJECTIONS_PATH = "/admin/projections"


class StatusError(RuntimeError):
    """Quipu could not be asked, or refused to answer."""


def api_base(url: str) -> str:
    """``http://host:port`` or ``http://host:port/api/v1`` -> the ``/api/v1`` base."""
    url = url.rstrip("/")
    return url if url.endswith("/api/v1") else f"{url}/api/v1"


def fetch_status(api_url: str, api_key: str, timeout: float = 10.0) -> Any:
    url = api_base(api_url) + PROJECTIONS_PATH
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout)
    except httpx.HTTPError as error:
        raise StatusError(f"cannot reach Quipu at {url}: {error}") from error
    if response.status_code != 200:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("title") or response.text
        except ValueError:
            detail = response.text
        raise StatusError(f"{url} answered {response.status_code}: {detail}")
    return response.json()


def render(document: Any, title: str = "projections", *, nested: bool = False) -> str:
    """The whole answer: a table per list of records, ``key: value`` for the rest."""
    if isinstance(document, list):
        return f"{title}\n{_table(document)}" if document else f"{title}: none"
    if not isinstance(document, dict):
        return f"{title}: {_cell(document)}"
    scalars = [f"{key}: {_cell(value)}" for key, value in document.items() if not isinstance(value, list | dict)]
    parts = ["\n".join([title, *scalars] if nested else scalars)] if scalars or nested else []
    parts += [render(value, key, nested=True) for key, value in document.items() if isinstance(value, list | dict)]
    return "\n\n".join(parts)


def _table(rows: list[Any]) -> str:
    records = [row if isinstance(row, dict) else {"value": row} for row in rows]
    columns: list[str] = []
    for record in records:
        columns += [key for key in record if key not in columns]
    cells = [[_cell(record.get(column)) for column in columns] for record in records]
    headers = [column.upper() for column in columns]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells, strict=False)]
    lines = [_row(headers, widths)] + [_row(line, widths) for line in cells]
    lines += _details(records, columns)
    return "\n".join(lines)


def _row(texts: list[str], widths: list[int]) -> str:
    return "  ".join(text.ljust(width) for text, width in zip(texts, widths, strict=True)).rstrip()


def _details(records: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """The entries of list fields (dead letters, unpublishable events ...), under the table."""
    lines: list[str] = []
    label = columns[0] if columns else ""
    shared = {  # the same entries on every row (the relay's, say): listed once
        column
        for column in columns
        if len(records) > 1
        and isinstance(records[0].get(column), list)
        and records[0][column]
        and all(r.get(column) == records[0][column] for r in records)
    }
    for column in columns:
        if column in shared:
            lines.append(f"{column} (all):")
            lines += [f"  - {_entry(item)}" for item in records[0][column]]
    for record in records:
        for column in columns:
            value = record.get(column)
            if isinstance(value, list) and value and column not in shared:
                lines.append(f"{record.get(label, '')} {column}:")
                lines += [f"  - {_entry(item)}" for item in value]
    return ["", *lines] if lines else []


def _entry(item: Any) -> str:
    if isinstance(item, dict):
        return ", ".join(f"{key}={_cell(value)}" for key, value in item.items())
    return _cell(item)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
