"""The watch of tests/support/modes.py sees what it is there to see."""

from __future__ import annotations

from pathlib import Path

from tests.support.modes import watched


def test_the_watch_does_see_a_loose_window(tmp_path: Path) -> None:
    """The mode tests that use the watch could not fail if the snapshots missed states: a write
    that creates a file 0644 and only then narrows it is caught."""
    with watched(tmp_path) as states:
        path = tmp_path / "careless.key"
        path.write_bytes(b"secret")  # created 0666 with umask 0
        path.chmod(0o600)
    assert (("careless.key", 0o666)) in states
    assert states[-1] == ("careless.key", 0o600)
