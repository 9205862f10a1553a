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
from dockops.errors import DockopsError, EngineRefused, EngineUnreachable, InvalidInput
from dockops.progress import ProgressCallback, ProgressEvent, ignore
from dockops.reference import familiar_name

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
    images = [
        ArchivedImage(reference=reference, id=_image_id(engine, reference))
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


def _image_id(engine: Engine, reference: str) -> str:
    """The ID of an image the user named to save; no such image is bad input, said in
    docker's words on any engine (Podman's are "failed to find image X: docker.io/X: No such
    image")."""
    with user_named("image", reference, f"save {reference}"):
        return str(engine.image(reference, f"save {reference}")["Id"])


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


# What the tar's checked bytes go through on their way to the engine (splice.py).
Through = Callable[[Iterator[bytes]], Iterator[bytes]]


def upload(
    send: Callable[[Iterable[bytes]], list[bytes]],
    source: Input,
    what: str,
    progress: ProgressCallback,
    through: Through | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Stream an archive to the engine straight from `source` (`send` is engine.load or
    engine.import_image), through `through` when given; return the engine's answer (its JSON
    documents) and the number of source bytes read.

    Raises:
        InvalidInput: a corrupt or truncated archive (the upload is left unfinished, so the
            engine loads nothing).
        EngineRefused, EngineUnreachable: the engine's own error text.
    """
    name, total = source.name, source.size
    opened = open_archive(source.stream, name)

    def body() -> Iterator[bytes]:
        chunks = opened.chunks(name)
        for chunk in chunks if through is None else through(chunks):
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
    through: Through | None = None,
) -> LoadResult:
    """Load images from a `docker save` tar (plain or gzip), streamed to the engine.

    Args:
        engine: the engine.
        source: a file path, or an open binary stream (stdin).
        progress: called with bytes read so far.
        through: what the checked tar bytes pass through on their way (splice.py).

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
            docs, consumed = upload(
                lambda pieces: engine.load(pieces, what), given, what, progress, through
            )
        except EngineRefused as exc:
            reason = _podman_reason(what, exc) if engine.is_podman else _missing_member(what, exc)
            if reason is None:
                raise
            raise reason from exc
    said = [image for doc in docs for image in _loaded(doc, podman=engine.is_podman)]
    # The engine names tagged images by reference only: ask for their IDs, by the name the
    # engine gave (Podman's docker.io/org/x), and show that name as docker does (org/x).
    with user_named():
        named = [
            ArchivedImage(
                reference=familiar_name(str(image.reference)),
                id=engine.image(str(image.reference), what)["Id"],
            )
            for image in said
            if image.reference is not None
        ]
    # Docker lists every image by ID as well when the archive's last image has no tag: an
    # image it named already is not listed again.
    known = {image.id for image in named}
    unnamed = {i.id: i for i in said if i.reference is None and i.id not in known}
    return LoadResult(source=name, bytes=consumed, images=(*named, *unnamed.values()))


_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")


def _loaded(doc: dict[str, Any], *, podman: bool) -> list[ArchivedImage]:
    """The images one document of a load's answer names.

    Docker says "Loaded image: NAME" for each tag and "Loaded image ID: ID" for an untagged
    image, a line each, several lines in one document at times. Podman says them all in one
    line, "Loaded image: NAME,NAME,...", an untagged image by its ID in the same list.
    """
    images: list[ArchivedImage] = []
    for line in str(doc.get("stream") or "").splitlines():
        label, _, said = line.partition(":")
        if label.strip() == "Loaded image ID":
            images.append(ArchivedImage(reference=None, id=said.strip()))
        elif label.strip() == "Loaded image":
            names = said.split(",") if podman else [said]
            images.extend(
                ArchivedImage(reference=None, id=n)
                if podman and _IMAGE_ID.fullmatch(n)
                else ArchivedImage(reference=n, id="")
                for n in (n.strip() for n in names)
                if n
            )
    return images


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


# Podman tries the upload as each format it knows and, when none takes it, lists why each
# refused: "payload does not match any of the supported image formats: * oci: ... *
# oci-archive: ... * docker-archive: ... * dir: ..." (on one line here). A `docker save` tar is
# a docker-archive: that item is the reason, the others only say it is not their format.
_PODMAN_FORMATS = "payload does not match any of the supported image formats:"
_PODMAN_ARCHIVE = re.compile(r" \* docker-archive: (.*?)(?= \* (?:oci|oci-archive|dir): |$)")
_PODMAN_NO_LAYER = "Some layer tarfiles are missing in the tarball"


def _podman_reason(what: str, refusal: EngineRefused) -> DockopsError | None:
    """Podman's refusal of a load, said by the one reason that concerns a docker-archive.

    Podman loads no archive that lacks a layer file, even when it holds that layer (Docker
    loads it): said as the incomplete archive it is, without the file's name, which Podman
    does not give."""
    if _PODMAN_FORMATS not in refusal.message:
        return None
    found = _PODMAN_ARCHIVE.search(refusal.message)
    if found is None:
        return None
    if _PODMAN_NO_LAYER in found[1]:
        return InvalidInput(
            f"{what}: incomplete archive: its manifest.json names layer files that are not in "
            "the tar (Podman loads no such archive, even when it holds those layers)"
        )
    return EngineRefused(f"{what}: {found[1]}")
