"""The design lives in the repository: comments point to documents a reader can open.

Comments and docstrings in ``src``, ``tests`` and ``bench`` may point to
``docs/architecture.md`` (by section) and ``docs/decisions/``, never to issue numbers,
design-document sections or reference-API file numbers kept outside the repository. Every
link in the architecture page and the decision records leads to a file (and heading) that
exists, and so does every ``docs/...`` path or architecture section a comment names.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("src", "tests", "bench")
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DECISIONS = ROOT / "docs" / "decisions"

# References a reader of the repository cannot open. Spelled in pieces so this file's own
# patterns are not references themselves.
UNOPENABLE = {
    "issue number": re.compile(r"\bissues? #?\d+", re.IGNORECASE),
    "design document": re.compile(r"\b" + "DES" + r"IGN\b"),
    "section sign": re.compile("\u00a7"),
    "reference-API file number": re.compile(r"\bseeds? \d{3}\b", re.IGNORECASE),
}
DOCS_PATH = re.compile(r"\bdocs/[\w./-]+\.md\b")
ARCHITECTURE_SECTION = re.compile(r"docs/architecture\.md, ([A-Z][\w ()-]*?)[).;:]")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _python_files() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and docstring in a Python file."""
    source = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring is not None:
                yield node.body[0].lineno, docstring


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(markdown: Path) -> dict[str, str]:
    """Anchor -> heading text of every heading in a Markdown file (code blocks skipped)."""
    found: dict[str, str] = {}
    fenced = False
    for line in markdown.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            title = line.lstrip("#").strip()
            found[_slug(title)] = title
    return found


def _design_documents() -> list[Path]:
    return [ARCHITECTURE, *sorted(DECISIONS.glob("*.md"))]


def test_comments_point_only_to_documents_in_the_repository() -> None:
    this_file = Path(__file__).resolve()
    found: list[str] = []
    for path in _python_files():
        if path.resolve() == this_file:
            continue
        for line, text in _prose(path):
            for what, pattern in UNOPENABLE.items():
                for match in pattern.finditer(text):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {what}: {match.group(0)!r}")
    assert not found, "point these to docs/architecture.md or docs/decisions/, or drop them:\n" + "\n".join(found)


def test_documents_and_sections_named_in_comments_exist() -> None:
    sections = set(_headings(ARCHITECTURE).values())
    missing: list[str] = []
    for path in _python_files():
        for line, text in _prose(path):
            flat = " ".join(text.split())
            for match in DOCS_PATH.finditer(flat):
                if not (ROOT / match.group(0)).is_file():
                    missing.append(f"{path.relative_to(ROOT)}:{line}: no file {match.group(0)}")
            for match in ARCHITECTURE_SECTION.finditer(flat):
                if match.group(1) not in sections:
                    missing.append(f"{path.relative_to(ROOT)}:{line}: no section {match.group(1)!r}")
    assert not missing, "\n".join(missing)


def test_links_in_the_design_documents_lead_somewhere() -> None:
    broken: list[str] = []
    documents = _design_documents()
    assert ARCHITECTURE.is_file() and (DECISIONS / "README.md").is_file()
    for document in documents:
        for target in MARKDOWN_LINK.findall(document.read_text()):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            destination = (document.parent / file_part).resolve() if file_part else document
            where = f"{document.relative_to(ROOT)}: {target}"
            if not destination.exists():
                broken.append(f"{where}: no such file")
            elif anchor and destination.suffix == ".md" and anchor not in _headings(destination):
                broken.append(f"{where}: no such heading")
            elif ROOT not in destination.parents and destination != ROOT:
                broken.append(f"{where}: outside the repository")
    assert not broken, "\n".join(broken)


def test_every_decision_record_is_listed_in_the_index() -> None:
    index = (DECISIONS / "README.md").read_text()
    records = sorted(p.name for p in DECISIONS.glob("[0-9][0-9][0-9][0-9]-*.md"))
    assert records, "no decision records"
    assert [r for r in records if f"({r})" not in index] == []
