"""save/load/export/import (cli/archive.py): bad input exits 2 in one line before any engine
call."""

from __future__ import annotations

import pytest

from tests.conftest import Cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["save", "busybox", "-o", "-", "--json"], "--json cannot be used with -o -"),
        (["save", "busybox", "-o", "/nonexistent-dir/x.tar"], "no such directory"),
        (["load", "-i", "/nonexistent-dir/x.tar"], "/nonexistent-dir/x.tar: no such file"),
        (["export", "bad name!", "-o", "x.tar"], "invalid container name"),
        (["import", "/nonexistent.tar", "app:v1"], "/nonexistent.tar: no such file"),
        (["import", "x.tar", "app:v1", "-c", "RUN make"], "invalid change 'RUN make'"),
        (["save", "busybox", "-o", "x.tar", "--json", "--quiet"], "--json and --quiet"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_engine_call(
    args: list[str], message: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No engine at this address: reaching it would be exit 3, not 2.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    code, out, err = cli(*args)
    assert (code, out) == (2, "")
    assert err.startswith("dockops: error: ") and err.count("\n") == 1
    assert message in err
