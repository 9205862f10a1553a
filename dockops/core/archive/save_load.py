"""Whole images as files: save and load, and the stream helpers export/import share
(archive_fs).

Every transfer is a stream of CHUNK-sized pieces between the engine socket and a file (never
a whole tar in memory), checked as a tar on the way (see archive_tar for why).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from dockops.core.archive.files import CHUNK, Written, open_archive, tar_sink, unwritable
from dockops.core.archive.tarcheck import TarProblem, TarWalker
from dockops.engine.address import engine_address
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput, root_cause
from dockops.progress import ProgressCallback, ProgressEvent, ignore

if TYPE_CHECKING:
    from dockops.engine.http import ImageEngine
    from dockops.engine.stream import Body


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


def stream_tar(
    body: Body,
    out: BinaryIO,
    what: str,
    label: str,
    progress: ProgressCallback,
    engine: ImageEngine,
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
        except body.broken as exc:
            reason = root_cause(exc) if isinstance(exc, OSError) else "connection closed"
            raise _broke(what, walker.offset, reason, engine) from exc
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
                f"{what}: lost the Docker engine at {engine_address()}: it stopped answering "
                f"after {walker.offset} bytes of the stream"
            ) from None
        raise EngineRefused(f"{what}: the engine's stream stopped early ({exc.message})") from None
    progress(ProgressEvent(item=label, status="written", current=walker.offset))


def _broke(what: str, offset: int, reason: str, engine: ImageEngine) -> EngineUnreachable:
    if not engine.answers():
        reason += f"; the Docker engine at {engine_address()} no longer answers"
    return EngineUnreachable(f"{what}: the engine's stream broke after {offset} bytes ({reason})")


def download_tar(
    engine: ImageEngine,
    path: str,
    params: Any,
    target: Path | BinaryIO,
    *,
    gzip: bool,
    what: str,
    progress: ProgressCallback,
) -> Written:
    """Stream the tar the engine serves at `path` into `target` (temp file + rename for a
    path), checked as a tar on the way; nothing is left behind when it fails."""
    label = target.name if isinstance(target, Path) else "stdout"
    written: Written
    with engine.stream(path, params, what) as body:
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
    engine: ImageEngine,
    references: list[str],
    target: Path | BinaryIO,
    *,
    gzip: bool,
    progress: ProgressCallback = ignore,
) -> SaveResult:
    """Save images (with their tags) to one tar, as `docker save` does.

    Args:
        engine: the engine (engine_http.open_engine).
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
    images = [
        ArchivedImage(reference=reference, id=engine.image(reference, f"save {reference}")["Id"])
        for reference in references
    ]
    what = f"save {' '.join(references)}"
    written = download_tar(
        engine,
        "/images/get",
        {"names": references},
        target,
        gzip=gzip,
        what=what,
        progress=progress,
    )
    return SaveResult(
        path=str(target) if isinstance(target, Path) else "-",
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
        if "errorDetail" in doc or "error" in doc:
            detail = doc.get("errorDetail") or {}
            text = detail.get("message") or doc.get("error") or "unknown error"
            raise EngineRefused(f"{what}: {text}")
        yield doc


def upload(
    engine: ImageEngine,
    path: str,
    params: dict[str, Any],
    source: BinaryIO,
    name: str,
    what: str,
    total: int | None,
    progress: ProgressCallback,
) -> tuple[list[dict[str, Any]], int]:
    """POST an archive as a chunked body straight from `source`; return the engine's answer
    (its JSON documents) and the number of source bytes read.

    Raises:
        InvalidInput: a corrupt or truncated archive (the upload is left unfinished, so the
            engine loads nothing).
        EngineRefused, EngineUnreachable: the engine's own error text.
    """
    opened = open_archive(source, name)

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
        docs = list(daemon_docs(engine.post_tar(path, params, body(), what), what))
    finally:
        opened.reader.close()
    return docs, opened.source.consumed


def load_images(
    engine: ImageEngine,
    source: Path | BinaryIO,
    *,
    progress: ProgressCallback = ignore,
) -> LoadResult:
    """Load images from a `docker save` tar (plain or gzip), streamed to the engine.

    Args:
        engine: the engine (engine_http.open_engine).
        source: a file path, or an open binary stream (stdin).
        progress: called with bytes read so far.

    Returns:
        The images loaded: reference (None when the tar names none) and ID.

    Raises:
        InvalidInput: missing, corrupt or truncated input (refused before the engine loads
            anything).
        EngineRefused, EngineUnreachable: the engine's own error text.
    """
    name = str(source) if isinstance(source, Path) else "-"
    total = source.stat().st_size if isinstance(source, Path) else None
    stream = open(source, "rb", buffering=0) if isinstance(source, Path) else source  # noqa: SIM115
    what = f"load {name}"
    try:
        docs, consumed = upload(
            engine, "/images/load", {"quiet": "1"}, stream, name, what, total, progress
        )
    except EngineRefused as exc:
        missing = _missing_member(what, exc)
        if missing is None:
            raise
        raise missing from exc
    finally:
        if isinstance(source, Path):
            stream.close()
    loaded: list[ArchivedImage] = []
    for doc in docs:
        text = str(doc.get("stream") or "").strip()
        if text.startswith("Loaded image ID:"):
            loaded.append(ArchivedImage(reference=None, id=text.split(":", 1)[1].strip()))
        elif text.startswith("Loaded image:"):
            loaded.append(ArchivedImage(reference=text.split(":", 1)[1].strip(), id=""))
    # The engine names tagged images by reference only: ask for their IDs.
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
