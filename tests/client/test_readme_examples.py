"""client/README.md's Python examples, run as written against a real Quipu, so a copied
example cannot drift from the client or the server.

Every ```python block runs in file order in one shared namespace, the way a reader pastes
them one after another into one script (```bash blocks are shell and are not run). The
reader's environment is QUIPU_URL and QUIPU_API_KEY; the examples are synchronous code, so
they run in a thread here (the server shares the test's event loop), and the async ones
start their own loop with ``asyncio.run`` as a script would.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.client.conftest import Served

README = Path(__file__).resolve().parents[2] / "client" / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, source) of each ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def run_in_order(blocks: list[tuple[int, str]]) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for line, source in blocks:
        # Padding keeps the README's line numbers in a failing example's traceback.
        code = compile("\n" * (line - 1) + source, str(README), "exec")
        exec(code, namespace)  # the README's own examples: running them is the point
    return namespace


def test_the_readme_has_python_examples_and_no_placeholder_key() -> None:
    text = README.read_text()
    blocks = python_blocks(text)
    assert len(blocks) >= 4
    assert "qk_..." not in "".join(source for _, source in blocks)  # the key comes from the environment


async def test_the_readme_examples_run_in_order_against_a_real_quipu(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIPU_URL", served.url)
    monkeypatch.setenv("QUIPU_API_KEY", served.quipu.keys["acme"])
    seen = await asyncio.wait_for(asyncio.to_thread(run_in_order, python_blocks(README.read_text())), 240)
    quipu = seen["quipu"]
    close = getattr(quipu, "close", None)
    if callable(close):
        close()
