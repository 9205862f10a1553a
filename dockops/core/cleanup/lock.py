"""One run at a time: an flock that dies with the process, so a crash never leaves it held.

The lock file must be the caller's own regular file, opened without following a symlink: in a
folder others can write, a planted symlink would have root create or truncate any file, and a
file another user owns (or may open) lets that user hold the lock, and so stop every run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dockops.errors import InvalidInput, LockHeld

# root's (cron's) locks: a folder only root can write; /run/lock is world-writable on Debian.
ROOT_LOCK_DIR = Path("/run/dockops")


def _is_private(folder: Path) -> bool:
    """A real folder (not a symlink) of the caller's that no one else can write into."""
    try:
        info = folder.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _private_dir(folder: Path, mode: int) -> Path:
    try:
        folder.mkdir(mode=mode)
    except FileExistsError:
        pass  # checked below, as one found there may be anyone's
    except OSError as exc:
        raise InvalidInput(f"cannot create the lock folder {folder}: {exc.strerror}") from None
    if not _is_private(folder):
        raise InvalidInput(
            f"lock folder {folder} is not a folder of yours that only you can write; "
            "remove it or choose --lock-file"
        )
    return folder


def default_lock_path(job: str) -> Path:
    """root (as cron runs it): /run/dockops; others: $XDG_RUNTIME_DIR when it is theirs alone,
    else a 0700 folder of their own in the temp folder. Missing folders are created.

    Raises:
        InvalidInput: that folder exists but is someone else's, a symlink, or writable by others.
    """
    name = f"dockops-{job}.lock"
    uid = os.geteuid()
    if uid == 0:
        return _private_dir(ROOT_LOCK_DIR, 0o755) / name
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_absolute() and _is_private(Path(runtime)):
        return Path(runtime) / name
    return _private_dir(Path(tempfile.gettempdir()) / f"dockops-{uid}", 0o700) / name


def _open_own(path: Path) -> int:
    """Open (or create, 0600) the lock file: never through a symlink, only a file of ours."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInput(f"lock file {path} is a symlink; refusing to follow it") from None
        raise InvalidInput(f"cannot open lock file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        # a second name would be a hard link someone made to a file of ours elsewhere
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise InvalidInput(f"lock file {path} is not a regular file with a single name")
        if info.st_uid != os.geteuid():
            raise InvalidInput(
                f"lock file {path} belongs to uid {info.st_uid}, not to you; "
                "remove it or choose another --lock-file"
            )
        if info.st_mode & 0o077:  # one others may open is one they may flock, and hold
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking flock on `path` for the block.

    Raises:
        LockHeld: another process holds it (exit 75: cron should simply try later).
        InvalidInput: the lock file cannot be opened, is a symlink, or is not the caller's own.
    """
    fd = _open_own(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(f"another dockops run holds {path}; try later") from None
        yield
    finally:
        os.close(fd)
