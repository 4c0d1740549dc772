"""/ui: the web explorer, a single-page app of hand-written ES modules (no build step).

Every page path under /ui answers the same index.html and the browser's router draws the page;
/ui/static/... serves the files. Nothing here carries data or takes a key: the pages call the
API with the bearer key the person typed in, so the auth guard (which covers only handlers that
take a ``principal``) leaves these routes alone. Not in the OpenAPI document: they are not API.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".md": "text/markdown",
    ".txt": "text/plain",
}
# Revalidate on every use (an ETag makes that a 304): the files have no content hashes in their
# names, so a long max-age would keep an old script after an upgrade.
CACHE = "no-cache"
# Scripts and styles from this server only: no inline script, nothing fetched from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGES_MARK = "<!--pages-->"


@lru_cache(maxsize=256)
def _file(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    """A file's bytes and ETag, cached until the file changes (``mtime_ns`` is in the key)."""
    data = path.read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:20] + '"'


def _index() -> tuple[bytes, str]:
    """index.html with one module script per page module present, so a page is added by
    adding its file, and one not written yet costs the browser no failed load."""
    pages = sorted(p.name for p in (STATIC / "js" / "pages").glob("*.js"))
    html_path = STATIC / "index.html"
    html, _ = _file(html_path, html_path.stat().st_mtime_ns)
    tags = "\n  ".join(f'<script type="module" src="/ui/static/js/pages/{name}"></script>' for name in pages)
    data = html.decode().replace(PAGES_MARK, tags).encode()
    return data, '"' + hashlib.sha256(data).hexdigest()[:20] + '"'


def _answer(request: Request[Any, Any, Any], data: bytes, etag: str, media_type: str) -> Response[bytes]:
    headers = {"ETag": etag, "Cache-Control": CACHE, **SECURITY_HEADERS}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


class ExplorerController(Controller):
    path = "/ui"
    include_in_schema = False

    @get(["/", "/{page:path}"], sync_to_thread=False)
    def page(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """Any page of the explorer: the same document, which routes in the browser."""
        data, etag = _index()
        return _answer(request, data, etag, MEDIA_TYPES[".html"])

    @get("/static/{file:path}", sync_to_thread=False)
    def static(self, file: FromPath[str], request: Request[Any, Any, Any]) -> Response[bytes]:
        """One of the explorer's files; nothing outside the static folder, no directory listings."""
        target = (STATIC / file.lstrip("/")).resolve()
        media_type = MEDIA_TYPES.get(target.suffix)
        if media_type is None or not target.is_relative_to(STATIC.resolve()) or not target.is_file():
            raise NotFoundException(f"no explorer file '{file}'")
        data, etag = _file(target, target.stat().st_mtime_ns)
        return _answer(request, data, etag, media_type)
