"""Describe a container root filesystem from host files, hash it, and write it as a tar.

The description is cheap to build and hash, so a cached image costs a hash, not a tar.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Entry:
    kind: Literal["dir", "file", "symlink"]
    mode: int
    source: Path | None = None  # host file whose bytes go in
    data: bytes | None = None  # inline bytes (configs)
    target: str | None = None  # symlink target


class Rootfs:
    """An image's files keyed by absolute path; parents are added as 0755 folders."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __contains__(self, path: str) -> bool:
        return _norm(path) in self._entries

    def dir(self, path: str, mode: int = 0o755) -> None:
        self._put(path, _Entry("dir", mode))

    def text(self, path: str, content: str, mode: int = 0o644) -> None:
        self._put(path, _Entry("file", mode, data=content.encode()))

    def copy(self, path: str, source: Path, mode: int | None = None) -> None:
        """Put the bytes of `source` (symlinks followed) at `path`, keeping its mode by default."""
        real = Path(os.path.realpath(source))
        mode = real.stat().st_mode & 0o7777 if mode is None else mode
        self._put(path, _Entry("file", mode, real))

    def symlink(self, path: str, target: str) -> None:
        self._put(path, _Entry("symlink", 0o777, target=target))

    def binary(self, path: str, source: Path) -> None:
        """Copy an executable and every library `ldd` names, at the paths ldd names them.

        The loader finds libraries by those paths (and the binary names its loader by
        /lib64/ld-linux-x86-64.so.2), so the files go there, with symlinks resolved.
        """
        self.copy(path, source)
        for lib in shared_libraries(source):
            if lib not in self:
                self.copy(lib, Path(lib))

    def busybox(self, source: Path) -> None:
        """/bin/busybox plus a link per applet in /bin and wherever `--list-full` puts it."""
        self.copy("/bin/busybox", source)
        listing = subprocess.run(
            [str(source), "--list-full"], capture_output=True, text=True, check=True
        ).stdout.split()
        for rel in listing:
            for link in (f"/bin/{PurePosixPath(rel).name}", f"/{rel}"):
                if link not in self:  # real files (registry, nginx) win over applets
                    self.symlink(link, "/bin/busybox")

    def digest(self, extra: bytes = b"") -> str:
        """sha256 over every path, kind, mode, link target and file byte, plus `extra`."""
        h = hashlib.sha256(extra)
        for path, entry in sorted(self._entries.items()):
            h.update(f"\0{path}\0{entry.kind}\0{entry.mode:o}\0{entry.target or ''}\0".encode())
            if entry.data is not None:
                h.update(entry.data)
            elif entry.source is not None:
                with open(entry.source, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
        return h.hexdigest()

    def write_tar(self, out: IO[bytes]) -> None:
        """A plain tar, root-owned, fixed mtime, parents before children (sorted paths)."""
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, entry in sorted(self._entries.items()):
                info = tarfile.TarInfo(path.lstrip("/"))
                info.mode, info.uid, info.gid, info.uname, info.gname = entry.mode, 0, 0, "", ""
                info.mtime = 0
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif entry.kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, entry.target or ""
                    tar.addfile(info)
                elif entry.data is not None:
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
                elif entry.source is not None:
                    info.size = entry.source.stat().st_size
                    with open(entry.source, "rb") as f:
                        tar.addfile(info, f)

    def _put(self, path: str, entry: _Entry) -> None:
        path = _norm(path)
        parent = str(PurePosixPath(path).parent)
        if parent != "/" and parent not in self._entries:
            self._put(parent, _Entry("dir", 0o755))
        existing = self._entries.get(parent) if parent != "/" else None
        if existing is not None and existing.kind != "dir":
            raise ValueError(f"{parent} is a {existing.kind}, cannot hold {path}")
        self._entries[path] = entry


def _norm(path: str) -> str:
    return str(PurePosixPath("/") / path.lstrip("/"))


def shared_libraries(binary: Path) -> list[str]:
    """Absolute paths of the shared objects `ldd` resolves for `binary` (loader included)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if out.returncode != 0:  # "not a dynamic executable": nothing to copy
        return []
    libs = []
    for line in out.stdout.splitlines():
        # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux... (0x...)"
        words = line.split()
        if "=>" in words:
            words = words[words.index("=>") + 1 :]
        if words and words[0].startswith("/"):
            libs.append(words[0])
        elif "not found" in line:
            raise RuntimeError(f"{binary}: ldd cannot resolve {line.strip()}")
    return libs
