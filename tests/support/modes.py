"""Watch the modes a file passes through, not only its last one: secrets on disk (private keys,
config.json) must be 0600 and certificates and htpasswd 0644 at most at every step of every
write, whatever the umask.

How: a file's mode changes only through a call Python audits (open with O_CREAT, chmod/fchmod,
rename, mkdir), so a snapshot of the folder taken at every audit event sees every state a file
passes through, including the temp files the writes rename into place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

_watching: list[Callable[[], None]] = []
_inside = threading.local()
_WATCHED_EVENTS = ("open", "os.chmod", "os.rename", "os.mkdir", "os.remove", "tempfile.mkstemp")


def _hook(event: str, args: tuple[object, ...]) -> None:
    if not _watching or event not in _WATCHED_EVENTS or getattr(_inside, "busy", False):
        return
    _inside.busy = True  # the snapshot itself lists folders, which raises audit events
    try:
        for snapshot in _watching:
            snapshot()
    finally:
        _inside.busy = False


sys.addaudithook(_hook)  # hooks cannot be removed: this one only acts while a test watches


@contextlib.contextmanager
def watched(folder: Path, umask: int = 0) -> Iterator[list[tuple[str, int]]]:
    """Record (relative path, mode) of everything under `folder` at every audited file
    operation in the block, run with `umask` (0: nothing is masked, so only the code's own
    modes count)."""
    states: list[tuple[str, int]] = []

    def snapshot() -> None:
        for path in folder.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                states.append((str(path.relative_to(folder)), stat.S_IMODE(path.lstat().st_mode)))

    previous = os.umask(umask)
    _watching.append(snapshot)
    try:
        yield states
        snapshot()
    finally:
        _watching.remove(snapshot)
        os.umask(previous)


def final_name(relative: str) -> str:
    """The file a temp file becomes: atomic_writer writes `.NAME.xxxx.tmp` next to NAME."""
    name = Path(relative).name
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:].rsplit(".", 2)[0]
    return name


def looser(mode: int, allowed: int) -> bool:
    return bool(mode & ~allowed)
