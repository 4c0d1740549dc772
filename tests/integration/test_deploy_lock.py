"""requirements/lock.txt resolves as the image's ``pip install --require-hashes`` would.

pip checks every file it would install against the lock's hashes and resolves the set for
this Python (3.11, the image's) without installing anything. It needs the package index, as
the image build does; files already in pip's cache are not downloaded again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.unit.test_deploy_image import LOCK, lock_entries


def test_the_lock_installs_with_require_hashes(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    # Only the public index, as in the image: this machine's pip configuration may add others.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check"]
    result = subprocess.run(
        [*pip, "--require-hashes", "--no-deps", "--ignore-installed", "--report", str(report), "-r", str(LOCK)],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    chosen = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    assert chosen == {name: version for name, (version, _hashes) in lock_entries().items()}
