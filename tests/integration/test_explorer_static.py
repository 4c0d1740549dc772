"""The web explorer's files, served by the API process at /ui: every page path answers the
single-page document (with a module script per page module), the static files have their
content types, validators and a cache header, nothing outside the static folder is served,
no key is asked for, and none of it is in the OpenAPI document. Every relative import in the
scripts names a file that exists, so a renamed module cannot break the page silently."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.explorer.controller import STATIC
from bus.subjects import Subjects
from tests.integration.conftest import Running, running_quipu

IMPORT = re.compile(r"""(?:^|\s)(?:import|from)\s*(?:[^'";]*?\s+from\s+)?['"](\.{1,2}/[^'"]+)['"]""", re.M)


@pytest.fixture
async def quipu(database_url: str, nats_url: str, subjects: Subjects) -> AsyncIterator[Running]:
    async with running_quipu(database_url, nats_url, subjects, background=False) as running:
        yield running


async def test_every_page_path_answers_the_document_without_a_key(quipu: Running) -> None:
    pages = sorted(p.name for p in (STATIC / "js" / "pages").glob("*.js"))
    assert pages
    for path in ("/ui", "/ui/", "/ui/executions", "/ui/executions/0190-not-an-id", "/ui/events/x/y"):
        r = await quipu.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert '<label for="api-key">API key</label>' in r.text
        assert '<script type="module" src="/ui/static/js/main.js"></script>' in r.text
        for page in pages:  # before main.js, which starts the router once every page is registered
            assert r.text.index(f'src="/ui/static/js/pages/{page}"') < r.text.index("js/main.js")


async def test_static_files_have_their_types_validators_and_cache_header(quipu: Running) -> None:
    for path, media_type in (
        ("/ui/static/js/api.js", "text/javascript"),
        ("/ui/static/css/app.css", "text/css"),
        ("/ui/static/index.html", "text/html"),
    ):
        r = await quipu.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(media_type)
        assert r.headers["cache-control"] == "no-cache"
        again = await quipu.client.get(path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/ui/static/js/missing.js",
        "/ui/static/../controller.py",
        "/ui/static/%2e%2e/controller.py",
        "/ui/static/..%2fcontroller.py",
        "/ui/static/js/",
        "/ui/static/js",
    ],
)
async def test_nothing_outside_the_static_files_is_served(quipu: Running, path: str) -> None:
    r = await quipu.client.get(path)
    assert "def " not in r.text  # no Python source, whatever the answer
    if r.status_code == 200:  # normalised by the client to a page path: the document
        assert r.headers["content-type"].startswith("text/html")
    else:
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


async def test_the_explorer_is_not_in_the_openapi_document(quipu: Running) -> None:
    doc = (await quipu.client.get("/docs/openapi.json")).json()
    assert not [p for p in doc["paths"] if p.startswith("/ui")]


def test_every_relative_import_of_the_scripts_names_an_existing_file() -> None:
    scripts = sorted((STATIC / "js").rglob("*.js"))
    assert len(scripts) > 5
    for script in scripts:
        for target in IMPORT.findall(script.read_text()):
            assert (script.parent / target).resolve().is_file(), f"{script.relative_to(STATIC)} imports {target}"


def test_the_static_files_ship_in_the_wheel() -> None:
    """pyproject's package-data globs cover every file of the static folder."""
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    globs = re.search(r'"api\.explorer" = \[([^\]]*)\]', text)
    assert globs
    patterns = re.findall(r'"static/([^"]+)"', globs.group(1))
    for file in STATIC.rglob("*"):
        if file.is_file():
            assert any(file.relative_to(STATIC).match(p) for p in patterns), file
