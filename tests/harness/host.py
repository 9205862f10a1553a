"""Host-side helpers for the harness: binaries, processes and mounts (Linux only).

Nothing here knows about docker; engine.py and rootfs.py compose these pieces.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# A non-root PATH often lacks the sbin folders, where Debian puts dockerd and nginx.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_PT_INTERP = 3


def find_binary(name: str, *, static: bool = False) -> Path | None:
    """First executable called `name` on PATH or in the system folders (static ELF if asked)."""
    found = shutil.which(name)
    candidates = ([found] if found else []) + [f"{d}/{name}" for d in SYSTEM_DIRS]
    for candidate in candidates:
        path = Path(candidate)
        if not (path.is_file() and os.access(path, os.X_OK)):
            continue
        if static and not is_static_elf(path):
            continue
        return path
    return None


def is_static_elf(path: Path) -> bool:
    """True for an ELF file without a PT_INTERP header, i.e. one that needs no loader.

    Read from the program headers rather than `file`, which a minimal machine may lack.
    """
    with open(path, "rb") as f:
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF":
            return False
        is64, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        if is64:
            phoff, phentsize, phnum = struct.unpack_from(order + "Q14xHH", ident, 0x20)
        else:
            phoff, phentsize, phnum = struct.unpack_from(order + "I10xHH", ident, 0x1C)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = (struct.unpack_from(order + "I", table, i * phentsize)[0] for i in range(phnum))
    return _PT_INTERP not in types


# --- processes ---------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone because it can no longer hold anything."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def terminate(pid: int, timeout: float, child: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM `pid`, wait up to `timeout`, then SIGKILL that pid only; reap it if it is ours."""
    if child is not None and child.poll() is not None:
        return  # already reaped: the pid may belong to someone else by now
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if _wait_gone(pid, wait, child):
            break
    if child is not None:
        child.poll()  # reap, so no zombie of ours is left behind


def _wait_gone(pid: int, timeout: float, child: subprocess.Popen[bytes] | None) -> bool:
    if child is not None:
        try:
            child.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill_leftovers(exec_root: Path, container_ids: Iterable[str]) -> list[int]:
    """Kill what a hard-killed dockerd leaves running: its containerd, shims and containers.

    containerd and its shims are found by our exec-root on their command line; container
    processes by the cgroup that dockerd's cgroupfs driver names after the container id.
    Returns the pids that were signalled.
    """
    victims: set[int] = set()
    marker = str(exec_root)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = cmdline(int(entry.name))
            if argv and Path(argv[0]).name.startswith("containerd") and marker in " ".join(argv):
                victims.add(int(entry.name))
    for cid in container_ids:
        victims.update(_cgroup_pids(cid))
    victims.discard(os.getpid())
    for pid in victims:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(victims)


def _cgroup_pids(container_id: str) -> set[int]:
    if not re.fullmatch(r"[0-9a-f]{64}", container_id):
        return set()
    patterns = (
        f"*/docker/{container_id}/cgroup.procs",  # cgroup v1, cgroupfs driver
        f"docker/{container_id}/cgroup.procs",  # cgroup v2, cgroupfs driver
        f"*/system.slice/docker-{container_id}.scope/cgroup.procs",  # systemd driver, v1
        f"system.slice/docker-{container_id}.scope/cgroup.procs",  # systemd driver, v2
    )
    pids: set[int] = set()
    for pattern in patterns:
        for procs in Path("/sys/fs/cgroup").glob(pattern):
            try:
                pids.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return pids


# --- mounts ------------------------------------------------------------------------------


def _unescape_mount(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (the order they must be unmounted in)."""
    base = os.path.realpath(root)
    found = []
    with open("/proc/self/mounts") as f:
        for line in f:
            point = _unescape_mount(line.split()[1])
            if point == base or point.startswith(base + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: (p.count("/"), len(p)), reverse=True)


def unmount_under(root: Path) -> list[str]:
    """Unmount everything at or below `root`; lazily when busy. Returns what is still mounted."""
    for _ in range(5):  # mounts can be stacked on one point: go round until none is left
        points = mounts_under(root)
        if not points:
            return []
        for point in points:
            plain = subprocess.run(["umount", point], capture_output=True, check=False)
            if plain.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return mounts_under(root)


# --- locks -------------------------------------------------------------------------------


@contextmanager
def flock(path: Path, timeout: float) -> Iterator[None]:
    """Exclusive lock on `path`; it dies with the process, so a crash never leaves it held.

    Raises:
        TimeoutError: another process held it for longer than `timeout` seconds.
    """
    with open(path, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked by another process") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
