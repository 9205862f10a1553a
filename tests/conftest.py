"""Shared fixtures: run the CLI in-process through its real entry point."""

from __future__ import annotations

import os
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


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each fsync/fdatasync from here on, by name (still done for real): whether a crash can
    take a file is decided by these calls alone, and nothing else shows them."""
    calls: list[str] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def record(fd: int, name: str = name, real: Callable[[int], None] = real) -> None:
            calls.append(name)
            real(fd)

        monkeypatch.setattr(os, name, record)
    return calls
