"""One run at a time: an flock that dies with the process, so a crash never leaves it held."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from dockops.errors import InvalidInput, LockHeld


def default_lock_path(job: str) -> Path:
    """/run/lock for root (as cron runs it), else $XDG_RUNTIME_DIR, else the temp folder."""
    name = f"dockops-{job}.lock"
    run_lock = Path("/run/lock")
    if os.geteuid() == 0 and run_lock.is_dir():
        return run_lock / name
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / name
    return Path("/tmp") / f"dockops-{os.geteuid()}-{job}.lock"


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking flock on `path` for the block.

    Raises:
        LockHeld: another process holds it (exit 75: cron should simply try later).
        InvalidInput: the lock file cannot be opened.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InvalidInput(f"cannot open lock file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"another dockops run holds {path}; try later") from None
        yield
    finally:
        os.close(fd)
