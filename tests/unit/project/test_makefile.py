"""The Makefile's laptop targets hand your values to dockops as they are, whatever they hold.

Each runs the real Makefile with BIN pointing at a stand-in dockops that records its argv, and
STAMP at a fresh file, so nothing is installed and no engine is called.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")

RECORDER = """#!{python}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def hostile(tmp: Path) -> list[str]:
    """Values that would run a command if a shell read them as code; each would create a file
    named after it in `tmp`."""
    return [
        f"a'b; touch {tmp}/quote",
        f"$(touch {tmp}/dollar)",
        f"`touch {tmp}/backtick`",
        f'x"; touch {tmp}/double; "',
        "$HOME and ${HOME}",
    ]


def make(tmp: Path, target: str, **values: str) -> list[list[str]]:
    """Run `make TARGET NAME=VALUE...`; the argv of each dockops call it made."""
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    recorder = bindir / "dockops"
    recorder.write_text(RECORDER.format(python=sys.executable))
    recorder.chmod(0o755)
    stamp = tmp / "stamp"
    stamp.touch()  # newer than pyproject.toml: make sees nothing to install
    log = tmp / "argv.jsonl"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO), target, f"BIN={bindir}", f"STAMP={stamp}"]
        + [f"{name}={value}" for name, value in values.items()],
        env={"PATH": "/usr/bin:/bin", "ARGV_LOG": str(log)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def no_command_ran(tmp: Path) -> None:
    assert sorted(p.name for p in tmp.iterdir()) == ["argv.jsonl", "bin", "stamp"]


@pytest.mark.parametrize("index", range(5))
def test_push_private_passes_each_value_as_one_literal_argument(tmp_path: Path, index: int) -> None:
    value = hostile(tmp_path)[index]
    calls = make(tmp_path, "push-private", IMG=value, REGISTRY=value, PUSH_AS=value)
    assert calls == [["push-private", value, "--registry", value, "--as", value]]
    no_command_ran(tmp_path)


def test_push_private_without_optional_values(tmp_path: Path) -> None:
    assert make(tmp_path, "push-private", IMG="app:1.4") == [["push-private", "app:1.4"]]


@pytest.mark.parametrize("index", range(5))
def test_prune_passes_older_than_and_yes_literally(tmp_path: Path, index: int) -> None:
    value = hostile(tmp_path)[index]
    calls = make(tmp_path, "prune", OLDER_THAN=value, YES="1")
    assert calls == [
        ["prune-dangling", "--dry-run", "--older-than", value],
        ["prune-dangling", "--older-than", value],
    ]
    no_command_ran(tmp_path)
    # a YES that is not 1 asks; with no terminal to answer, nothing is removed
    assert make(tmp_path, "prune", YES=value) == [["prune-dangling", "--dry-run"]]
    no_command_ran(tmp_path)


@pytest.mark.parametrize("index", range(5))
def test_registry_targets_pass_values_literally(tmp_path: Path, index: int) -> None:
    value = hostile(tmp_path)[index]
    assert make(tmp_path, "registry-up", PORT=value, BIND=value) == [
        ["registry", "up", "--port", value, "--bind", value]
    ]
    assert make(tmp_path, "registry-secure", HOST=value, PORT=value, REGISTRY_USER=value) == [
        ["registry", "secure", "--host", value, "--port", value, "--user", value]
    ]
    no_command_ran(tmp_path)
