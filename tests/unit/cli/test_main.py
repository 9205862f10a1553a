"""The entry point's lean start-up: what a short command imports, and the command map that
lets run() import only the module of the command named."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from dockops.cli import main
from tests.conftest import Cli

# Never needed before a command talks to an engine or a registry, nor for help or bad input.
HEAVY = {
    "docker", "requests", "urllib3", "paramiko", "tenacity", "cryptography", "bcrypt",
    "tabulate", "isal", "prometheus_client", "importlib.metadata",
}  # fmt: skip

PROBE = (
    "import sys\n"
    "from dockops.cli.main import run\n"
    "try:\n    run(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
    "print(code, ' '.join(sorted(m for m in sys.modules if '.' not in m or m.startswith("
    "('importlib.', 'dockops.cli.')))))\n"
)


def _imported(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
        env={"DOCKER_HOST": "unix:///nonexistent.sock", "PATH": "/usr/bin:/bin"},
    )
    code, *modules = done.stdout.splitlines()[-1].split()
    return int(code), set(modules)


def test_version_alone_imports_not_even_typer() -> None:
    code, modules = _imported("--version")
    assert code == 0
    assert modules & {*HEAVY, "typer", "rich", "click"} == set()


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["images", "Bad Ref"], 2),
        (["dangling", "--bogus"], 2),
        (["history", "Bad Ref"], 2),
        (["layers", "Bad Ref"], 2),
        (["doctor", "--bogus"], 2),
    ],
)
def test_short_commands_import_neither_rich_nor_any_engine_or_registry_library(
    args: list[str], exit_code: int
) -> None:
    code, modules = _imported(*args)
    assert code == exit_code
    assert modules & {*HEAVY, "rich"} == set()
    # Only the named command's module (and what it imports): the others' cost is not paid.
    assert {"dockops.cli.archive", "dockops.cli.registry"} & modules == set()


def test_help_imports_rich_for_itself_and_nothing_heavy() -> None:
    code, modules = _imported("images", "--help")
    assert code == 0
    assert modules & HEAVY == set()


def test_command_map_is_what_each_module_registers() -> None:
    every: set[str] = set()
    for module in main.MODULES:
        names = set(_commands(main.build_app((module,))))
        assert names == {name for name, owner in main.COMMANDS.items() if owner == module}
        every |= names
    assert set(_commands(main.build_app())) == every == set(main.COMMANDS)


def _commands(app: typer.Typer) -> list[str]:
    return list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_help_before_the_command_is_the_root_help(cli: Cli) -> None:
    code, out, _ = cli("--help", "images")
    assert code == 0
    for name in main.COMMANDS:
        assert name in out


def test_version_fast_or_through_typer_says_the_same(cli: Cli) -> None:
    assert cli("--version") == cli("--debug", "--version")
