"""Shared fixtures: run the CLI in-process through its real entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pytest

from dockops.cli.main import run


class Result(NamedTuple):
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """`cli("images", "--json")` → Result(exit code, stdout, stderr), through the error boundary."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            run(list(args))
        captured = capsys.readouterr()
        code = info.value.code
        return Result(code if isinstance(code, int) else 1, captured.out, captured.err)

    return invoke
