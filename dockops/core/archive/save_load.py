"""Whole images as files: save and load, and the stream helpers export/import share
(filesystem.py).

Every transfer is a stream of CHUNK-sized pieces between the engine socket and a file (never
a whole tar in memory), checked as a tar on the way (see tarcheck.py for why).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from dockops.core.archive.files import (
    CHUNK,
    Input,
    Written,
    open_archive,
    open_input,
    shown,
    tar_sink,
    unwritable,
)
from dockops.core.archive.tarcheck import TarProblem, TarWalker
from dockops.engine.errors import daemon_error, user_named
from dockops.engine.wire import Body, StreamBroken
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput
from dockops.progress import ProgressCallback, ProgressEvent, ignore

if TYPE_CHECKING:
    from dockops.engine.api import Engine


@dataclass(frozen=True)
class ArchivedImage:
    reference: str | None  # None: loaded by ID only (no tag in the tar)
    id: str


@dataclass(frozen=True)
class SaveResult:
    path: str  # "-" for stdout
    bytes: int  # bytes written (compressed size for gzip)
    sha256: str  # of the bytes written, so `sha256sum FILE` matches
    compressed: bool
    images: tuple[ArchivedImage, ...]


@dataclass(frozen=True)
class LoadResult:
    source: str  # "-" for stdin
    bytes: int  # bytes read from the source (compressed size for gzip)
    images: tuple[ArchivedImage, ...]


class Answering(Protocol):
    """What stream_tar asks of an engine once a stream stopped short (an Engine)."""

    @property
    def address(self) -> str: ...

    def answers(self) -> bool: ...


def stream_tar(
    body: Body,
    out: BinaryIO,
    what: str,
    label: str,
    progress: ProgressCallback,
    engine: Answering,
) -> None:
    """Copy the engine's tar body to `out`, walking its headers; raise if it is incomplete.

    A stream that stops early is checked against `engine`: when the engine no longer answers
    (stopped, crashed) that is the error to report, not the short tar.
    """
    walker = TarWalker()
    reported = 0
    while True:
        try:
            chunk = next(body.pieces, None)
        except StreamBroken as exc:
            raise _broke(what, walker.offset, _cut_reason(exc), engine) from exc
        if chunk is None:
            break
        try:
            walker.feed(chunk)
        except TarProblem as exc:
            raise EngineRefused(f"{what}: {exc.engine_error or exc.message}") from None
        out.write(chunk)
        if walker.offset - reported >= CHUNK:  # pieces can be small: report per MiB
            reported = walker.offset
            progress(ProgressEvent(item=label, status="writing", current=walker.offset))
    try:
        walker.finish()
    except TarProblem as exc:
        if exc.engine_error is not None:  # moby's FormatError, written after the 200
            raise EngineRefused(f"{what}: {exc.engine_error}") from None
        if body.ends_at_close:
            # An unframed body ends only when the engine closes: short of the tar's end
            # marker, and with no error said, that close cut the stream.
            raise _broke(what, walker.offset, "connection closed", engine) from None
        if not engine.answers():
            raise EngineUnreachable(
                f"{what}: lost the Docker engine at {engine.address}: it stopped answering "
                f"after {walker.offset} bytes of the stream"
            ) from None
        raise EngineRefused(f"{what}: the engine's stream stopped early ({exc.message})") from None
    progress(ProgressEvent(item=label, status="written", current=walker.offset))


def _cut_reason(exc: StreamBroken) -> str:
    """An OS-level reason (reset by peer, timed out) tells the user something; an HTTP
    library's words for a body cut short (urllib3's IncompleteRead) do not: the engine's side
    closed the connection."""
    return exc.reason if isinstance(exc.__cause__, OSError) else "connection closed"


def _broke(what: str, offset: int, reason: str, engine: Answering) -> EngineUnreachable:
    if not engine.answers():
        reason += f"; the Docker engine at {engine.address} no longer answers"
    return EngineUnreachable(f"{what}: the engine's stream broke after {offset} bytes ({reason})")


def download_tar(
    engine: Engine,
    stream: AbstractContextManager[Body],
    target: Path | BinaryIO,
    *,
    gzip: bool,
    what: str,
    progress: ProgressCallback,
) -> Written:
    """Copy the tar `stream` (engine.save, engine.export) serves into `target` (temp file +
    rename for a path), checked as a tar on the way; nothing is left behind when it fails."""
    label = target.name if isinstance(target, Path) else "stdout"
    written: Written
    with stream as body:
        try:
            with tar_sink(target, gzip=gzip) as (out, written):
                stream_tar(body, out, what, label, progress, engine)
        except OSError as exc:
            # The engine side turns its own OSErrors into DockopsErrors: this is the disk
            # (full, quota, read-only, I/O error), and the temp file is already gone.
            error = unwritable(what, target, exc)
            if error is None:
                raise
            raise error from exc
    return written


def save_images(
    engine: Engine,
    references: list[str],
    target: Path | BinaryIO,
    *,
    gzip: bool,
    progress: ProgressCallback = ignore,
) -> SaveResult:
    """Save images (with their tags) to one tar, as `docker save` does.

    Args:
        engine: the engine.
        references: image references or IDs (validated by the caller).
        target: a file path (temp file + rename) or an open binary stream (stdout).
        gzip: compress with gzip (isal, threaded).
        progress: called with bytes written so far.

    Returns:
        The path, size and sha256 of what was written, and the images in it.

    Raises:
        InvalidInput: an image does not exist (checked before anything is written).
        EngineRefused, EngineUnreachable: the engine failed; no file is left behind.
    """
    with user_named():
        images = [
            ArchivedImage(
                reference=reference, id=engine.image(reference, f"save {reference}")["Id"]
            )
            for reference in references
        ]
    what = f"save {' '.join(references)}"
    written = download_tar(
        engine, engine.save(references, what), target, gzip=gzip, what=what, progress=progress
    )
    return SaveResult(
        path=shown(target),
        bytes=written.bytes,
        sha256=written.sha256,
        compressed=gzip,
        images=tuple(images),
    )


def daemon_docs(lines: Iterable[bytes], what: str) -> Iterator[dict[str, Any]]:
    """The engine's JSON-lines answer; an `errorDetail` in it is a refusal (HTTP was 200)."""
    import json

    for line in lines:
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            raise EngineRefused(f"{what}: unexpected answer {line[:200]!r}") from None
        if not isinstance(doc, dict):
            raise EngineRefused(f"{what}: unexpected answer {line[:200]!r}")
        failure = daemon_error(doc)
        if failure is not None:
            raise EngineRefused(f"{what}: {failure}")
        yield doc


def upload(
    send: Callable[[Iterable[bytes]], list[bytes]],
    source: Input,
    what: str,
    progress: ProgressCallback,
) -> tuple[list[dict[str, Any]], int]:
    """Stream an archive to the engine straight from `source` (`send` is engine.load or
    engine.import_image); return the engine's answer (its JSON documents) and the number of
    source bytes read.

    Raises:
        InvalidInput: a corrupt or truncated archive (the upload is left unfinished, so the
            engine loads nothing).
        EngineRefused, EngineUnreachable: the engine's own error text.
    """
    name, total = source.name, source.size
    opened = open_archive(source.stream, name)

    def body() -> Iterator[bytes]:
        for chunk in opened.chunks(name):
            yield chunk
            progress(
                ProgressEvent(
                    item=name, status="sending", current=opened.source.consumed, total=total
                )
            )
        progress(
            ProgressEvent(
                item=name, status="engine working", current=opened.source.consumed, total=total
            )
        )

    try:
        docs = list(daemon_docs(send(body()), what))
    finally:
        opened.reader.close()
    return docs, opened.source.consumed


def load_images(
    engine: Engine,
    source: Path | BinaryIO,
    *,
    progress: ProgressCallback = ignore,
) -> LoadResult:
    """Load images from a `docker save` tar (plain or gzip), streamed to the engine.

    Args:
        engine: the engine.
        source: a file path, or an open binary stream (stdin).
        progress: called with bytes read so far.

    Returns:
        The images loaded: reference (None when the tar names none) and ID.

    Raises:
        InvalidInput: missing, corrupt or truncated input (refused before the engine loads
            anything).
        EngineRefused, EngineUnreachable: the engine's own error text.
    """
    with open_input(source) as given:
        name, what = given.name, f"load {given.name}"
        try:
            docs, consumed = upload(lambda pieces: engine.load(pieces, what), given, what, progress)
        except EngineRefused as exc:
            missing = _missing_member(what, exc)
            if missing is None:
                raise
            raise missing from exc
    loaded: list[ArchivedImage] = []
    for doc in docs:
        text = str(doc.get("stream") or "").strip()
        if text.startswith("Loaded image ID:"):
            loaded.append(ArchivedImage(reference=None, id=text.split(":", 1)[1].strip()))
        elif text.startswith("Loaded image:"):
            loaded.append(ArchivedImage(reference=text.split(":", 1)[1].strip(), id=""))
    # The engine names tagged images by reference only: ask for their IDs.
    with user_named():
        images = tuple(
            image
            if image.id
            else ArchivedImage(
                reference=image.reference, id=engine.image(str(image.reference), what)["Id"]
            )
            for image in loaded
        )
    return LoadResult(source=name, bytes=consumed, images=images)


# The engine unpacks a load into a temp folder, then opens each file manifest.json names.
_NOT_IN_TAR = re.compile(r"/docker-import-\d+/(\S+?): no such file or directory")


def _missing_member(what: str, refusal: EngineRefused) -> InvalidInput | None:
    """A tar whose manifest.json names a file it does not hold (a layer, a config), which the
    engine does not have either: the engine says "open <its temp path>: no such file"; say
    which file of the tar is missing instead. (A missing layer the engine already holds is
    no error: it loads, as `docker load` does, which delta archives rely on.)"""
    found = _NOT_IN_TAR.search(refusal.message)
    if found is None:
        return None
    return InvalidInput(
        f"{what}: incomplete archive: its manifest.json names {found[1]}, which is not in the "
        "tar (and the engine does not hold that layer already)"
    )
