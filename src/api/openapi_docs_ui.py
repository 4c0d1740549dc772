"""The docs UI at /docs: Swagger UI whose scripts, styles and icon this server serves itself,
from the ``swagger-ui-py`` package's copy of the Swagger UI distribution, so /docs works with
no network beyond this server (no CDN)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath

DOCS_PATH = "/docs"
# The swagger-ui-py package's copy of the Swagger UI distribution, found without importing the
# package (its __init__ loads its own web-framework adapters, which Quipu does not use).
ASSETS = Path(str(getattr(find_spec("swagger_ui"), "origin", ""))).parent / "static"
# What the docs page loads; nothing else under the package's folder is served.
ASSET_TYPES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}


class OfflineSwagger(SwaggerRenderPlugin):
    """Swagger UI whose scripts, styles and icon are served by this server."""

    def __init__(self) -> None:
        assets = f"{DOCS_PATH}/assets"
        super().__init__(
            js_url=f"{assets}/swagger-ui-bundle.js",
            css_url=f"{assets}/swagger-ui.css",
            standalone_preset_js_url=f"{assets}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{assets}/favicon-32x32.png'>",
            path="/",
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(docs_asset)


@get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)
def docs_asset(name: FromPath[str]) -> Response[bytes]:
    """One of the docs UI's files (long cached: they change only with the package)."""
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise NotFoundException(f"no docs asset '{name}'")
    return Response(
        (ASSETS / name).read_bytes(), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"}
    )
