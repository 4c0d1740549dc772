"""The ``quipu`` command line: version, help on everything, environment variables named and
read, ``projector rebuild NAME`` as a subcommand, and the older ``projector [NAME...]``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from projections.registry import PROJECTIONS
from quipu.cli import main
from quipu.cli.admin import status_target
from quipu.cli.common import settings
from quipu.cli.options import ENV, SETTINGS_OPTIONS, with_projector_run
from quipu.cli.parser import build_parser
from quipu.cli.roles import cmd_projector_rebuild, cmd_projector_run


def _parsers(parser: argparse.ArgumentParser, path: str = "quipu") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def _subcommand_helps(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str | None]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                yield choice.dest, choice.help


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(with_projector_run(argv))


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"quipu {version('quipu')}\n"
    installed = subprocess.run([Path(sys.executable).with_name("quipu"), "--version"], capture_output=True, text=True)
    assert installed.returncode == 0 and installed.stdout == f"quipu {version('quipu')}\n"


def test_every_command_and_option_has_help_and_names_its_environment_variable() -> None:
    seen_env: set[str] = set()
    for path, parser in _parsers(build_parser()):
        for name, help_text in _subcommand_helps(parser):
            assert help_text, f"'{path} {name}' has no help"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction | argparse._VersionAction):
                continue
            where = f"{path} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and len(action.help) > 10, f"{where} has no help"
            if action.dest in ENV:
                assert f"env: {ENV[action.dest]}" in action.help, where
                seen_env.add(action.dest)
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert "default: " in action.help, f"{where} does not show its default"
            if action.dest in SETTINGS_OPTIONS:
                assert action.dest in ENV, f"{where} overrides a setting but names no variable"
    assert seen_env == set(ENV)  # every variable in the table is named by some option
    rendered = build_parser()._subparsers._group_actions[0].choices["up"].format_help()  # type: ignore[union-attr]
    assert "[env: QUIPU_PORT; default: 8000 when free, else a free port]" in " ".join(rendered.split())


# (what the environment says, what the flag says) and the value each becomes
SAMPLES: dict[str, tuple[str, object, str, object]] = {
    "data_dir": ("/srv/env", Path("/srv/env"), "/srv/flag", Path("/srv/flag")),
    "database_url": ("postgresql://env/q", "postgresql://env/q", "postgresql://flag/q", "postgresql://flag/q"),
    "nats_url": ("nats://env:4222", "nats://env:4222", "nats://flag:4222", "nats://flag:4222"),
    "log_format": ("json", "json", "console", "console"),
    "log_level": ("debug", "debug", "warning", "warning"),
    "host": ("0.0.0.0", "0.0.0.0", "127.0.0.2", "127.0.0.2"),
    "port": ("8123", 8123, "7001", 7001),
    "health_port": ("9123", 9123, "7002", 7002),
    "nats_cluster": ("3", 3, "5", 5),
}


@pytest.mark.parametrize("dest", SETTINGS_OPTIONS)
def test_the_variable_a_help_names_is_the_one_read_and_the_flag_wins(
    dest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = ["projector", "run"] if dest == "health_port" else ["up"]
    flag = "--" + dest.replace("_", "-")
    from_env, env_value, from_flag, flag_value = SAMPLES[dest]
    monkeypatch.setenv(ENV[dest], from_env)
    assert getattr(settings(_parse(command)), dest) == env_value
    assert getattr(settings(_parse([*command, flag, from_flag])), dest) == flag_value
    # The options every command has are also accepted before the command; these belong to one.
    if dest not in ("host", "port", "health_port", "nats_cluster"):
        assert getattr(settings(_parse([flag, from_flag, *command])), dest) == flag_value


def test_status_reads_its_url_and_key_from_the_variables_its_help_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUIPU_DATA_DIR", str(tmp_path))  # no runtime.json there
    monkeypatch.setenv(ENV["api_url"], "http://env:8000")
    monkeypatch.setenv(ENV["api_key"], "qk_env")
    assert status_target(_parse(["status"])) == ("http://env:8000", "qk_env")
    assert status_target(_parse(["status", "--api-url", "http://flag", "--api-key", "qk_flag"])) == (
        "http://flag",
        "qk_flag",
    )


def test_rebuild_is_a_subcommand_offering_the_projection_names() -> None:
    args = _parse(["projector", "rebuild", "workflows"])
    assert (args.func, args.name, args.progress_interval) == (cmd_projector_rebuild, "workflows", 5.0)
    projector = build_parser()._subparsers._group_actions[0].choices["projector"]  # type: ignore[union-attr]
    rebuild = projector._subparsers._group_actions[0].choices["rebuild"]  # type: ignore[union-attr]
    name = next(a for a in rebuild._actions if a.dest == "name")
    assert list(name.choices or []) == sorted(PROJECTIONS)
    assert all(p in rebuild.format_help() for p in PROJECTIONS)


@pytest.mark.parametrize("argv", [["projector", "rebuild", "nosuch"], ["projector", "run", "nosuch"]])
def test_an_unknown_projection_is_refused_with_the_known_names(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err and "'workflows'" in err and "Traceback" not in err


def test_rebuild_wants_exactly_one_name(capsys: pytest.CaptureFixture[str]) -> None:
    refusals = {
        ("projector", "rebuild"): "the following arguments are required: NAME",
        ("projector", "rebuild", "workflows", "timers"): "unrecognized arguments: timers",
    }
    for argv, why in refusals.items():
        with pytest.raises(SystemExit) as exit_:
            main(list(argv))
        assert exit_.value.code == 2 and why in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "names", "health_port"),
    [
        (["projector"], [], None),
        (["projector", "workflows", "timers"], ["workflows", "timers"], None),
        (["--data-dir", "/d", "projector", "--health-port", "9"], [], 9),
        (["--log-level=debug", "projector", "workflows"], ["workflows"], None),
        (["projector", "run", "workflows"], ["workflows"], None),
    ],
)
def test_the_older_projector_spellings_still_run_projectors(
    argv: list[str], names: list[str], health_port: int | None
) -> None:
    args = _parse(argv)
    assert (args.func, args.names, args.health_port) == (cmd_projector_run, names, health_port)
