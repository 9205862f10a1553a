"""Write files so a reader never sees half of one: temp file in the same folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def make_folders(folder: Path, mode: int = 0o755) -> None:
    """Create missing folders `mode` (0755), less what the umask takes away: mkdir -p gives
    0777 less the umask, so under umask 0 a certs.d/HOST:PORT anyone may write would let
    anyone replace the CA the daemon trusts; a stricter umask (077) is kept."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for level in reversed(missing):
        with contextlib.suppress(FileExistsError):
            level.mkdir(mode=mode)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only when the block ends without error.

    The temp file is created with `mode` from the start (keys never exist with looser modes),
    fsynced, then renamed over `path`; on any error, or an interrupt, it is removed.
    """
    make_folders(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_writer(path, mode) as handle:
        handle.write(data)
