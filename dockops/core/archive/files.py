"""Byte plumbing for archives: where a tar goes (file, gzip, stdout) and where one comes from.

Everything moves in CHUNK-sized pieces so memory stays flat whatever the image size.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from dockops.core.archive.tarcheck import BLOCK, TarProblem, TarWalker, looks_like_tar
from dockops.errors import InvalidInput

# 1 MiB: large enough that per-chunk Python work (hash, walker, progress) is noise, small
# enough to keep the peak RSS far below the 80 MiB budget even with the gzip queues.
CHUNK = 1024 * 1024
SYNC_EVERY = 32 * CHUNK
WRITE_PIECE = 64 * 1024
GZIP_SUFFIXES = (".tar.gz", ".tgz")
GZIP_MAGIC = b"\x1f\x8b"
# Compressions the engine itself understands (docker load/import): passed through untouched.
_ENGINE_COMPRESSIONS = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


def wants_gzip(path: str) -> bool:
    """True when the file name asks for gzip (.tar.gz, .tgz)."""
    return path.lower().endswith(GZIP_SUFFIXES)


def check_output_path(path: str) -> Path | None:
    """Validate an output path before any engine call; None means stdout ("-").

    Raises:
        InvalidInput: the folder does not exist, or the path is a folder.
    """
    if path == "-":
        return None
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{path}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise InvalidInput(f"{path}: no such directory {str(target.parent)!r}")
    return target


def unwritable(what: str, target: Path | BinaryIO, exc: OSError) -> InvalidInput | None:
    """The one line for an output that could not be written (disk full, quota, read-only,
    I/O error); None for a reader that left a pipe (`save -o - | head`), not an error."""
    if isinstance(exc, BrokenPipeError):
        return None
    reason = (exc.strerror or str(exc)).lower()
    where = str(target) if isinstance(target, Path) else "stdout"
    left = "; nothing was left behind" if isinstance(target, Path) else ""
    return InvalidInput(f"{what}: cannot write {where}: {reason}{left}")


def check_input_path(path: str) -> Path | None:
    """Validate an input file before any engine call; None means stdin ("-").

    Raises:
        InvalidInput: missing, not a regular file, unreadable or empty.
    """
    if path == "-":
        return None
    source = Path(path)
    if not source.exists():
        raise InvalidInput(f"{path}: no such file")
    if not source.is_file():
        raise InvalidInput(f"{path}: not a regular file")
    if not os.access(source, os.R_OK):
        raise InvalidInput(f"{path}: not readable")
    if source.stat().st_size == 0:
        raise InvalidInput(f"{path}: empty file")
    return source


def shown(where: Path | BinaryIO) -> str:
    """How a result names where a tar went or came from: its path, or "-" for stdout/stdin."""
    return str(where) if isinstance(where, Path) else "-"


@dataclass(frozen=True)
class Input:
    """An input archive opened for reading."""

    stream: BinaryIO
    name: str  # the path, or "-" for stdin
    size: int | None  # None for stdin: progress has no total then


@contextlib.contextmanager
def open_input(source: Path | BinaryIO) -> Iterator[Input]:
    """A path opened unbuffered (reads go straight to the archive reader's own CHUNK buffer)
    and closed at the end; a stream (stdin) as it is, left open."""
    if not isinstance(source, Path):
        yield Input(stream=source, name="-", size=None)
        return
    with source.open("rb", buffering=0) as stream:
        yield Input(stream=stream, name=str(source), size=source.stat().st_size)


@contextlib.contextmanager
def checked_first(given: Input, checking: Callable[[int], None]) -> Iterator[Input]:
    """`given`, read through and checked as a tar before a byte of it is sent, then from its
    start again: for an engine that takes a cut upload as a whole one.

    Podman 4's import goes on with whatever part of the body it got when the client stops
    sending (its handler reports the failed read and imports that part all the same), so a
    truncated tar stopped half-way still became an image. A file is read twice; stdin is
    spooled to a temp file first. A file that changes between the two reads is still stopped
    on the second, but Podman then imports the part it got.

    Raises:
        InvalidInput: corrupt or truncated (nothing was sent).
    """
    with contextlib.ExitStack() as stack:
        stream = given.stream
        if not stream.seekable():
            import tempfile

            spool = cast(BinaryIO, stack.enter_context(tempfile.TemporaryFile()))
            while piece := stream.read(CHUNK):
                spool.write(piece)
            spool.seek(0)
            stream = spool
        start = stream.tell()
        opened = open_archive(stream, given.name)
        try:
            for _ in opened.chunks(given.name):
                checking(opened.source.consumed)
        finally:
            opened.reader.close()
        stream.seek(start)
        yield Input(stream=stream, name=given.name, size=given.size)


class _Hashing(io.RawIOBase):
    """A write-through file that counts and hashes what reaches the disk (or stdout).

    Large writes are hashed and written WRITE_PIECE bytes at a time: measured here, writing
    600 MB took 0.2 s in 64 KiB writes and 1.4 s in 1 MiB ones, the kernel's copy into the
    page cache being that much faster from a source still in the CPU's cache.
    """

    def __init__(self, target: BinaryIO, written: Callable[[int], None] | None = None) -> None:
        self._target = target
        self._written = written
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(data)
        if size <= WRITE_PIECE:
            self.sha256.update(data)
            self._target.write(data)
        else:
            view = memoryview(data)
            for start in range(0, size, WRITE_PIECE):
                piece = view[start : start + WRITE_PIECE]
                self.sha256.update(piece)
                self._target.write(piece)
        self.bytes += size
        if self._written is not None:
            self._written(size)
        return size


class _Syncer:
    """Flushes a file being written to disk in the background, every SYNC_EVERY bytes.

    The final fsync (atomic_writer) of a 600 MB tar took ~2 s here when it had everything
    still to write, all after the stream had ended. Syncing along the way overlaps that
    writeback with the stream; doing it in this thread keeps the writer from waiting on it.
    """

    def __init__(self, fd: int) -> None:
        import threading

        self._fd = fd
        self._pending = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def written(self, size: int) -> None:
        self._pending += size
        if self._pending >= SYNC_EVERY:
            self._pending = 0
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop:
                return
            # An error here (EIO) shows again in the final fsync, which reports it.
            with contextlib.suppress(OSError):
                os.fdatasync(self._fd)

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join()


@dataclass
class Written:
    """What a sink wrote, known once its block has ended."""

    bytes: int = 0
    sha256: str = ""


@contextlib.contextmanager
def tar_sink(target: Path | BinaryIO, *, gzip: bool) -> Iterator[tuple[BinaryIO, Written]]:
    """Yield a binary file to write a tar into, and the record of what was written.

    A path gets a temp file in its folder, renamed over the path only when the block ends
    without error (an interrupt or an engine error leaves neither file). It is 0600 whatever
    the umask, a file it replaces included, as `docker save -o` and `docker export -o` write
    theirs: an image's files often hold secrets. It is synced to disk
    before the rename, as `docker save -o` syncs its own temp file, so a crash after "saved"
    never leaves a half archive under the name. A stream (stdout) is written as is. With
    `gzip`, the bytes go through isal's threaded gzip writer.
    """
    from dockops.atomic import atomic_writer

    written = Written()
    with contextlib.ExitStack() as stack:
        raw: BinaryIO = (
            stack.enter_context(atomic_writer(target, 0o600))
            if isinstance(target, Path)
            else target
        )
        syncer = _Syncer(raw.fileno()) if isinstance(target, Path) else None
        if syncer is not None:
            stack.callback(syncer.stop)
        hashing = _Hashing(raw, syncer.written if syncer is not None else None)
        if gzip:
            from isal import igzip_threaded

            # Level 1 and two compression threads: measured here, ~5x stdlib gzip level 6's
            # output rate, and docker load reads it like any gzip.
            threads = max(1, min(4, (os.cpu_count() or 1)))
            out = cast(
                BinaryIO,
                igzip_threaded.open(  # type: ignore[no-untyped-call]
                    hashing, "wb", compresslevel=1, threads=threads, block_size=CHUNK
                ),
            )
            try:
                yield out, written
            except BaseException:
                # Stop the compression threads; the temp file is removed by atomic_writer.
                with contextlib.suppress(Exception):
                    out.close()
                raise
            out.close()
        else:
            yield cast(BinaryIO, hashing), written
        raw.flush()
        written.bytes, written.sha256 = hashing.bytes, hashing.sha256.hexdigest()


class HeadFirst(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff them), with those bytes put back
    in front; counts what is read."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
        else:
            count = self._rest.readinto(buffer)  # type: ignore[attr-defined]
        self.consumed += count or 0
        return count or 0


@dataclass
class Opened:
    """An input archive: `chunks` yields its tar bytes (decompressed when gzip)."""

    kind: str  # "tar", "gzip", or a compression the engine decodes itself
    source: HeadFirst
    reader: BinaryIO

    def chunks(self, name: str) -> Iterator[bytes]:
        """The bytes to send, checked as a tar on the way; the last chunk is held back until
        the end marker has been seen, so a truncated file never completes an upload.

        Raises:
            InvalidInput: corrupt or truncated gzip or tar (the message names `name`).
        """
        walker = TarWalker() if self.kind in ("tar", "gzip") else None
        held: bytes | None = None
        gzip = self.kind == "gzip"
        broken = gzip_errors() if gzip else (OSError,)
        while True:
            try:
                chunk = self.reader.read(CHUNK)
            except broken as exc:
                if not gzip:
                    raise InvalidInput(f"{name}: cannot read it: {exc}") from exc
                raise InvalidInput(f"{name}: corrupt or truncated gzip: {exc}") from exc
            if not chunk:
                break
            if walker is not None:
                try:
                    walker.feed(chunk)
                except TarProblem as exc:
                    raise InvalidInput(f"{name}: {exc.message}") from exc
            if held is not None:
                yield held
            held = chunk
        if walker is not None:
            try:
                walker.finish()
            except TarProblem as exc:
                raise InvalidInput(f"{name}: {exc.message}") from exc
        if held is not None:
            yield held


def gzip_errors() -> tuple[type[Exception], ...]:
    """What isal's gzip reader raises for a corrupt or truncated file: "Compressed file ended
    before the end-of-stream marker", a bad CRC (OSError, EOFError, ValueError), or, for a
    damaged deflate block, its own IsalError, which is none of those."""
    from isal.isal_zlib import error

    return (OSError, EOFError, ValueError, cast(type[Exception], error))


def read_head(stream: BinaryIO, size: int = 1024 * 1024) -> bytes:
    """Up to `size` bytes from the start of `stream` (a pipe may give them in pieces)."""
    head = b""
    while len(head) < size:
        piece = stream.read(size - len(head))
        if not piece:
            break
        head += piece
    return head


def open_archive(stream: BinaryIO, name: str) -> Opened:
    """Sniff a tar / tar.gz (or an engine-decoded compression) at the start of `stream`.

    Raises:
        InvalidInput: empty, or neither a tar nor a compressed file.
    """
    head = read_head(stream, BLOCK)
    if not head:
        raise InvalidInput(f"{name}: empty input")
    source = HeadFirst(head, stream)
    if head.startswith(GZIP_MAGIC):
        from isal import igzip_threaded

        # The threaded reader decompresses in a worker thread while this one sends.
        reader = cast(
            BinaryIO,
            # isal ships no type hints for the threaded module.
            igzip_threaded.open(  # type: ignore[no-untyped-call]
                source, "rb", threads=1, block_size=CHUNK
            ),
        )
        return Opened(kind="gzip", source=source, reader=reader)
    for magic, kind in _ENGINE_COMPRESSIONS.items():
        if head.startswith(magic):
            return Opened(
                kind=kind, source=source, reader=cast(BinaryIO, io.BufferedReader(source, CHUNK))
            )
    if not looks_like_tar(head):
        raise InvalidInput(f"{name}: not a tar archive (nor a gzip, xz, bzip2 or zstd one)")
    return Opened(kind="tar", source=source, reader=cast(BinaryIO, source))
