"""Delta archives: a save-format tar without the layers the target engine already has.

The engine's load skips a layer file it does not need: for each layer of an image it looks up
the chain of diff IDs up to that layer, and opens the file only when that chain is missing.
So a layer may be left out when its whole chain (the image's layers up to and including it)
is the start of a base image's chain. The archive says what it left out in a first member,
dockops-delta.json (diff IDs, their chains, the base images that provide them, and whose
layout the rest is; see delta_record.py): `dockops load` checks the target engine against it
before loading anything, and a plain `docker load` ignores the extra file. Podman's load wants
every layer file in the tar: there `dockops load` puts the left-out ones back, taken from the
engine's own save (splice.py).

The archive is the engine's own save stream, in its own layout, less the layers left out. In
Docker 25's and Podman's a layer is named by its diff ID and left out as it passes; in Docker's
before 25 (`<v1 id>/layer.tar`) which layer it is is known only once its bytes have been hashed,
so members are written to an uncompressed temp file and a left-out one is cut off again (seek +
truncate) once its hash says so. The record, which names the layout, is written first into the
output, then the temp file, compressed or not. Memory stays flat; the temp file holds only the
delta.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from dockops.core.archive import layout
from dockops.core.archive.delta_record import (
    BLOCK,
    FORMAT,
    json_or_none,
    record_member,
    strings,
)
from dockops.core.archive.files import (
    CHUNK,
    GZIP_MAGIC,
    HeadFirst,
    gzip_errors,
    read_head,
    shown,
    tar_sink,
)
from dockops.core.archive.save_load import ArchivedImage
from dockops.core.archive.tarcheck import NAME_SHOWN, TarProblem, TarWalker
from dockops.engine.errors import user_named
from dockops.errors import EngineRefused, InvalidInput
from dockops.progress import ProgressCallback, ProgressEvent, ignore
from dockops.reference import parse_reference
from dockops.text import printable

if TYPE_CHECKING:
    from dockops.engine.api import Engine

# A base archive's configs come before the manifest.json that says which members they are,
# so JSON members are kept until it is read: each under _MEMBER_LIMIT, all under
# METADATA_LIMIT (an image's config is a few KiB; the limit is thousands of images).
_MEMBER_LIMIT = 4 * 1024 * 1024
METADATA_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class Base:
    """An image whose layers the target is expected to have."""

    name: str  # as given: a reference, or ARCHIVE:reference
    id: str
    diff_ids: tuple[str, ...]


@dataclass(frozen=True)
class Omitted:
    diff_id: str
    image: int  # index of an image of the archive holding it ...
    position: int  # ... and where: its chain is that image's diff IDs[: position + 1]
    provided_by: tuple[str, ...]  # base names
    size: int | None = None  # the layer tar's bytes, once seen


@dataclass(frozen=True)
class DeltaResult:
    path: str
    bytes: int  # what was written (the delta)
    full_bytes: int  # what the engine's full save stream held
    sha256: str
    compressed: bool
    images: tuple[ArchivedImage, ...]
    omitted: tuple[Omitted, ...]


def omittable(images: list[tuple[str, ...]], bases: list[Base]) -> dict[str, Omitted]:
    """The layers that may be left out (pure: unit-tested): a layer whose chain is a prefix of
    some base's chain, in every image of the archive that holds it."""
    found: dict[str, Omitted] = {}
    kept: set[str] = set()
    for index, diff_ids in enumerate(images):
        for i, diff_id in enumerate(diff_ids):
            chain = diff_ids[: i + 1]
            providers = tuple(b.name for b in bases if b.diff_ids[: i + 1] == chain)
            if providers:
                found.setdefault(
                    diff_id,
                    Omitted(diff_id=diff_id, image=index, position=i, provided_by=providers),
                )
            else:
                kept.add(diff_id)
    return {d: o for d, o in found.items() if d not in kept}


def archive_bases(path: Path) -> list[Base]:
    """The images of a save-format archive (plain or gzip, bzip2, xz), as bases.

    Raises:
        InvalidInput: not a readable save-format archive.
    """
    with path.open("rb", buffering=0) as stream:
        return bases_in(stream, str(path))


def bases_in(stream: BinaryIO, name: str) -> list[Base]:
    """The images of a save-format archive read from `stream`: their configs' diff IDs.

    The archive is walked by TarWalker, which caps what any header can make it hold; what is
    kept here (manifest.json, and the JSON members it may name) is capped at METADATA_LIMIT.

    Raises:
        InvalidInput: not a readable save-format archive, or one with more metadata than that.
    """
    what = f"--delta-from {name}"
    kept: dict[str, bytes] = {}
    total = 0

    def wanted(member: str, size: int) -> bool:
        return size <= _MEMBER_LIMIT and layout.may_be_metadata(member)

    walker = TarWalker(wanted)
    unreadable: tuple[type[Exception], ...] = (*gzip_errors(), lzma.LZMAError)
    try:
        reader = _unpacked(stream)
        while chunk := reader.read(CHUNK):
            walker.feed(chunk)
            for member, data in walker.kept:
                # Configs are JSON objects; an OCI layout's small layers are blobs too.
                if member == "manifest.json" or data[:1] == b"{":
                    total += len(data)
                    if total > METADATA_LIMIT:
                        raise TarProblem(
                            f"more than {METADATA_LIMIT // (1024 * 1024)} MiB of manifests "
                            "and image configs"
                        )
                    kept[member] = data
            walker.kept.clear()
            if walker.ended:  # what follows the end marker is padding: not worth unpacking
                break
        walker.finish()
    except TarProblem as exc:
        raise InvalidInput(f"{what}: not a readable image archive ({exc.message})") from None
    except unreadable as exc:
        raise InvalidInput(f"{what}: not a readable image archive ({exc})") from None
    bases = _bases(kept, name)
    if not bases:
        raise InvalidInput(f"{what}: no image in that archive")
    return bases


def _unpacked(stream: BinaryIO) -> BinaryIO:
    """The tar bytes of a plain, gzip, bzip2 or xz archive (anything else is for the walker
    to refuse)."""
    head = read_head(stream, 6)
    whole = cast(BinaryIO, io.BufferedReader(HeadFirst(head, stream), CHUNK))
    if head.startswith(GZIP_MAGIC):
        from isal import igzip

        return cast(BinaryIO, igzip.open(whole, "rb"))  # type: ignore[no-untyped-call]
    if head.startswith(b"BZh"):
        return cast(BinaryIO, bz2.BZ2File(whole))
    if head.startswith(b"\xfd7zXZ\x00"):
        return cast(BinaryIO, lzma.LZMAFile(whole))
    return whole


def _bases(kept: dict[str, bytes], name: str) -> list[Base]:
    """The images manifest.json names, with the diff IDs of their configs.

    Raises:
        InvalidInput: manifest.json or a config it names is not what `docker save` writes.
    """

    def damaged(member: str) -> InvalidInput:
        return InvalidInput(f"--delta-from {name}: not a readable image archive ({member})")

    manifest = json_or_none(kept.get("manifest.json", b"[]"))
    if not isinstance(manifest, list) or not all(isinstance(e, dict) for e in manifest):
        raise damaged("its manifest.json is not a list of images")
    bases = []
    for entry in manifest:
        config_name, tags = entry.get("Config"), entry.get("RepoTags") or []
        if not isinstance(config_name, str) or not strings(tags):
            raise damaged("its manifest.json is not a list of images")
        raw = kept.get(config_name)
        if raw is None:
            continue
        config = json_or_none(raw)
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = (rootfs.get("diff_ids") or []) if isinstance(rootfs, dict) else None
        if not strings(diff_ids):
            raise damaged(f"'{printable(config_name, NAME_SHOWN)}' is not an image config")
        label = f"{name}:{_familiar(tags[0])}" if tags else name
        bases.append(
            Base(
                name=label, id="sha256:" + hashlib.sha256(raw).hexdigest(), diff_ids=tuple(diff_ids)
            )
        )
    return bases


def _familiar(tag: str) -> str:
    """A tag as Docker shows it: Podman's archives say docker.io/library/busybox:latest."""
    try:
        return str(parse_reference(tag).familiar())
    except InvalidInput:  # the name comes from a file: shown as it is, made printable
        return printable(tag, NAME_SHOWN)


def resolve_bases(engine: Engine, names: list[str]) -> list[Base]:
    """Each --delta-from: an existing archive file, else a local image.

    Raises:
        InvalidInput: no such image, or an unreadable archive.
    """
    bases: list[Base] = []
    for name in names:
        if os.path.isfile(name):
            bases += archive_bases(Path(name))
            continue
        with user_named():
            found = engine.image(name, f"--delta-from {name}")
        layers = tuple((found.get("RootFS") or {}).get("Layers") or [])
        bases.append(Base(name=name, id=str(found["Id"]), diff_ids=layers))
    return bases


def _copy_member(source: IO[bytes], out: BinaryIO, size: int) -> str:
    digest = hashlib.sha256()
    left = size
    while left:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            raise EngineRefused("the engine's save stream ended inside a layer")
        digest.update(chunk)
        out.write(chunk)
        left -= len(chunk)
    out.write(b"\0" * (-size % BLOCK))
    return "sha256:" + digest.hexdigest()


class PieceReader:
    """A streamed body's pieces as the file tarfile's stream mode reads: each read returns
    what is left of the current piece, up to `size` (b"" only at the end)."""

    def __init__(self, pieces: Iterator[bytes | memoryview]) -> None:
        self._pieces = pieces
        self._left = memoryview(b"")

    def read(self, size: int = -1) -> bytes:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._left = memoryview(bytes(piece))  # a piece may be a reused buffer's view
        taken = self._left if size < 0 else self._left[:size]
        self._left = self._left[len(taken) :]
        return bytes(taken)


class CountingReader:
    """The engine's stream, counting what passes (the full archive's size) and walking its
    headers: tarfile alone takes a stream cut at a member's end for a whole archive, and
    reads an engine's error document as a bad header."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.bytes = 0
        self.walker = TarWalker()

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.raw.read(size)
        self.bytes += len(data)
        self.walker.feed(data)
        return data


@dataclass(frozen=True)
class _Written:
    full: int  # the engine's whole stream
    cut: dict[str, int]  # diff ID -> size of the layer tar left out
    layout: str  # whose layout (layout.DOCKER, DOCKER_OCI, PODMAN)


def _write_delta(stream: Any, out: BinaryIO, omit: dict[str, Omitted], on: Any) -> _Written:
    """Copy the engine's tar (read from `stream`) into `out`, cutting off omitted layers."""
    cut: dict[str, int] = {}
    told: str | None = None
    source = CountingReader(stream)
    with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            told = told or layout.layout_told(member.name)
            named = layout.named_digest(member.name) if member.isfile() else None
            if named in omit:
                cut[named] = member.size
                continue  # Docker 25+, Podman: the name is the diff ID, nothing to read
            start = out.tell()
            out.write(member.tobuf(format=tarfile.PAX_FORMAT))
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            digest = _copy_member(handle, out, member.size)
            if digest in omit and layout.may_be_layer(member.name):
                out.seek(start)
                out.truncate()
                cut[digest] = member.size
            on(ProgressEvent(item="delta", status="writing", current=out.tell()))
    out.write(b"\0" * (2 * BLOCK))
    while source.read(CHUNK):  # the end-of-archive blocks, for the full size
        pass
    source.walker.finish()
    return _Written(full=source.bytes, cut=cut, layout=told or layout.DOCKER)


def save_delta(
    engine: Engine,
    references: list[str],
    base_names: list[str],
    target: Path | BinaryIO,
    *,
    gzip: bool,
    progress: ProgressCallback = ignore,
) -> DeltaResult:
    """Save images to one tar without the layers every BASE already provides.

    Raises:
        InvalidInput: an image or base that does not exist, an unreadable base archive.
        EngineRefused, EngineUnreachable: the engine failed; no file is left behind.
    """
    with user_named():
        found = [engine.image(ref, f"save {ref}") for ref in references]
    bases = resolve_bases(engine, base_names)
    chains = [tuple((f.get("RootFS") or {}).get("Layers") or []) for f in found]
    omit = omittable(chains, bases)
    meta = {
        "format": FORMAT,
        "images": [
            {"reference": r, "id": f["Id"], "diff_ids": list(c)}
            for r, f, c in zip(references, found, chains, strict=True)
        ],
        "bases": [{"name": b.name, "id": b.id} for b in bases],
        "omitted": [
            {
                "diff_id": o.diff_id,
                "image": o.image,
                "position": o.position,
                "provided_by": list(o.provided_by),
            }
            for o in omit.values()
        ],
    }
    what = f"save {' '.join(references)}"
    folder = target.parent if isinstance(target, Path) else None
    with tempfile.TemporaryFile(dir=folder, prefix=".dockops-delta.") as spool:
        # A stream cut off (StreamBroken) leaves this block: the Engine says the engine was lost.
        with engine.save(references, what) as body:
            try:
                copied = _write_delta(PieceReader(body.pieces), spool, omit, progress)
            except TarProblem as exc:
                raise EngineRefused(f"{what}: {exc.engine_error or exc.message}") from None
            except tarfile.TarError as exc:
                raise EngineRefused(f"{what}: the engine's stream is not a tar ({exc})") from None
        # The record goes first, written once the stream has said whose layout it is.
        meta["layout"] = copied.layout
        spool.seek(0)
        with tar_sink(target, gzip=gzip) as (out, written):
            out.write(record_member(meta))
            shutil.copyfileobj(spool, out, CHUNK)
    return DeltaResult(
        path=shown(target),
        bytes=written.bytes,
        full_bytes=copied.full,
        sha256=written.sha256,
        compressed=gzip,
        images=tuple(
            ArchivedImage(reference=r, id=str(f["Id"]))
            for r, f in zip(references, found, strict=True)
        ),
        omitted=tuple(replace(o, size=copied.cut.get(o.diff_id)) for o in omit.values()),
    )
