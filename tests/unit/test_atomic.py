"""Files are replaced whole or not at all, with their final mode from the start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dockops.atomic import atomic_writer, write_atomic


def test_mode_is_set_before_any_byte_is_written(tmp_path: Path) -> None:
    target = tmp_path / "ca.key"
    with atomic_writer(target, mode=0o600) as handle:
        assert stat.S_IMODE(os.fstat(handle.fileno()).st_mode) == 0o600
        handle.write(b"secret")
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "data.tar"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("disk went away")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.tar"]


def test_interrupt_leaves_no_temp(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_writer(tmp_path / "x") as handle:
        handle.write(b"...")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_file_is_synced_before_it_is_renamed(tmp_path: Path, syncs: list[str]) -> None:
    write_atomic(tmp_path / "config.json", b"{}")
    assert syncs == ["fsync"]
