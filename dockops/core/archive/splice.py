"""A delta archive loaded on Podman: the layers it left out, put back from the engine itself.

Docker's load opens a layer file only when it lacks that layer's chain, so it loads a delta as
it is. Podman reads a docker-archive (any archive but Docker 25's of one image, which it reads
as OCI: delta_record.read_as_oci) only with every layer file manifest.json names in the tar,
even of layers it holds ("Some layer tarfiles are missing in the tarball"). So on Podman the
tar sent to its load is the delta with the missing layer members added, taken from the
engine's own save (GET /images/get) of the images check_delta found holding them, under the
names the delta's manifest.json gives them (each layout names them its own way, layout.py).

One pass, constant memory, no temp file. manifest.json comes last in every layout, so the
delta's members go to the engine as they are, and the missing layers follow them, before the
end-of-archive marker (moved to the very end): Podman's reader finds a member by scanning the
whole tar, so the order does not matter to it. Podman's save names each layer by its diff ID
(`<diff id>.tar`), so a wanted layer is known by its header, copied as it passes and hashed on
the way; its last piece is held back until the hash matches the name, so a layer that is not
what it says never completes the upload. An upload left unfinished loads nothing: Podman
copies the body to a temp file first and refuses it on a read error.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from dockops.core.archive import layout
from dockops.core.archive.delta import CountingReader, PieceReader
from dockops.core.archive.delta_record import BLOCK, Held, check_delta, json_or_none, read_as_oci
from dockops.core.archive.files import CHUNK
from dockops.core.archive.save_load import LoadResult, load_images
from dockops.core.archive.tarcheck import TarProblem, TarWalker
from dockops.errors import EngineRefused, InvalidInput
from dockops.progress import ProgressCallback, ProgressEvent, ignore

if TYPE_CHECKING:
    from dockops.engine.api import Engine

MANIFEST = "manifest.json"
# Far over any real one (Podman itself reads 1 MiB of it at most): what a delta's manifest.json
# may hold for the names of its layers to be read from it.
MANIFEST_LIMIT = 4 * 1024 * 1024
_END = b"\0" * (2 * BLOCK)


def load_delta(
    engine: Engine,
    source: Path | BinaryIO,
    doc: dict[str, Any],
    name: str,
    *,
    progress: ProgressCallback = ignore,
) -> LoadResult:
    """Load a delta archive (its record `doc`, read_delta) where the engine holds the layers
    it leaves out; on Podman, with those layers put back from the engine's own save.

    Raises:
        InvalidInput: a damaged record or manifest.json, a corrupt or truncated archive.
        EngineRefused: naming the base image(s) and layers the engine lacks (nothing is
            sent); the engine's save not giving a layer, or not the layer its name says
            (the upload is left unfinished: nothing is loaded).
        EngineUnreachable: as load_images.
    """
    held = check_delta(engine, doc, name)
    if not held.layers or not engine.is_podman or read_as_oci(doc):
        return load_images(engine, source, progress=progress)
    splice = Splice(engine, doc, held, name, progress)
    return load_images(engine, source, progress=progress, through=splice)


def layer_names(
    manifest: bytes | None, doc: dict[str, Any], omitted: frozenset[str], name: str
) -> dict[str, list[str]]:
    """Each omitted diff ID with the member names the delta's manifest.json gives it, first
    seen first (pure: the manifest comes from the archive, so each name must be one a layer
    has in some layout, which also keeps it inside the tar).

    Raises:
        InvalidInput: no manifest.json (or one over MANIFEST_LIMIT), or one that does not
            list the record's images with their layers.
    """
    what = f"load {name}"
    if manifest is None:
        raise InvalidInput(
            f"{what}: a delta archive without a {MANIFEST} of at most "
            f"{MANIFEST_LIMIT // (1024 * 1024)} MiB"
        )
    damaged = InvalidInput(f"{what}: its {MANIFEST} does not list the delta's images and layers")
    entries = json_or_none(manifest)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise damaged
    by_config = {str(e.get("Config")): e for e in entries}
    names: dict[str, list[str]] = {}
    for image in doc["images"]:  # needed_chains checked the record's images and diff IDs
        image_id, diff_ids = image.get("id"), image["diff_ids"]
        if not isinstance(image_id, str):
            raise damaged
        configs = [c for c in layout.config_names(image_id) if c in by_config]
        entry: dict[str, Any] = by_config[configs[0]] if configs else {}
        paths = entry.get("Layers")
        if not isinstance(paths, list) or len(paths) != len(diff_ids):
            raise damaged
        for diff_id, path in zip(diff_ids, paths, strict=True):
            if diff_id not in omitted:
                continue
            member = posixpath.normpath(path) if isinstance(path, str) else ""
            if not layout.may_be_layer(member):
                raise damaged
            found = names.setdefault(diff_id, [])
            if member not in found:
                found.append(member)
    return names


def _header(name: str, size: int = 0, link: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if link:
        info.type, info.linkname = tarfile.SYMTYPE, link
    else:
        info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _link(name: str, target: str) -> str:
    """`target` (a member name) as a symlink at `name` points to it: relative, as the layouts'
    own links are (Podman's reader joins it to the link's folder)."""
    return "../" * name.count("/") + target


def _split(tail: bytes, chunk: bytes, count: int) -> tuple[list[bytes], bytes]:
    """The first `count` bytes of tail + chunk as pieces to send (without joining a large
    chunk to a small tail), and what is left."""
    if count <= 0:
        return [], tail + chunk
    if count <= len(tail):
        return [tail[:count]], tail[count:] + chunk
    cut = count - len(tail)
    pieces = [tail, chunk if cut == len(chunk) else chunk[:cut]]
    return [p for p in pieces if p], chunk[cut:]


class Splice:
    """The tar bytes sent to Podman's load: the delta's (checked, by load_images' reader), less
    its end marker, then the layers it left out, then the end marker."""

    def __init__(
        self,
        engine: Engine,
        doc: dict[str, Any],
        held: Held,
        name: str,
        progress: ProgressCallback = ignore,
    ) -> None:
        self.engine = engine
        self.doc = doc
        self.held = held
        self.name = name
        self.what = f"load {name}"
        self.progress = progress

    def __call__(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        def keep(member: str, size: int) -> bool:
            return member == MANIFEST and size <= MANIFEST_LIMIT

        walker = TarWalker(keep)
        manifest: bytes | None = None
        # The last bytes fed, not sent yet: a block still coming together may be the first of
        # the end marker, which the layers go before.
        tail = b""
        for chunk in chunks:
            if walker.end_at is not None:
                continue  # the end marker and what pads it: read on, for the reader's checks
            sent = walker.offset - len(tail)
            try:
                walker.feed(chunk)
            except TarProblem as exc:  # the reader's own walk says it first, as it should
                raise InvalidInput(f"{self.name}: {exc.message}") from None
            for _, data in walker.kept:
                # Podman's reader takes the first member of a name.
                manifest = data if manifest is None else manifest
            walker.kept.clear()
            safe = walker.end_at if walker.end_at is not None else walker.offset - (BLOCK - 1)
            pieces, tail = _split(tail, chunk, safe - sent)
            yield from pieces
        wanted = layer_names(manifest, self.doc, self.held.layers, self.name)
        yield from self.layers(wanted)
        yield _END

    def layers(self, wanted: dict[str, list[str]]) -> Iterator[bytes]:
        """The wanted layers as tar members, read off the engine's save of the images that
        hold them: each under its first name, its other names symlinks to it.

        Raises:
            EngineRefused: the save is broken, lacks a wanted layer or gives another one.
            EngineUnreachable: the engine stopped answering (Engine.stream says so).
        """
        left = dict(wanted)
        images = list(self.held.images)
        what = f"{self.what}: the layers it leaves out, from the engine's save of " + ", ".join(
            i.removeprefix("sha256:")[:12] for i in images
        )
        with self.engine.save(images, what) as body:
            source = CountingReader(PieceReader(body.pieces))
            try:
                with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
                    for member in tar:
                        digest = layout.named_digest(member.name) if member.isfile() else None
                        handle = tar.extractfile(member) if digest in left else None
                        if digest is None or handle is None:
                            continue
                        names = left.pop(digest)
                        yield from self._layer(handle, member.size, digest, names[0], what)
                        for other in names[1:]:
                            yield _header(other, link=_link(other, names[0]))
                while source.read(CHUNK):  # to the end marker: a cut stream is no whole save
                    pass
                source.walker.finish()
            except TarProblem as exc:
                raise EngineRefused(f"{what}: {exc.engine_error or exc.message}") from None
            except tarfile.TarError as exc:
                raise EngineRefused(f"{what}: the engine's stream is not a tar ({exc})") from None
        if left:
            shown = ", ".join(d.removeprefix("sha256:")[:12] for d in left)
            raise EngineRefused(f"{what}: it lacks layer {shown}; nothing was loaded")

    def _layer(self, handle: Any, size: int, diff_id: str, name: str, what: str) -> Iterator[bytes]:
        """One layer member, its data hashed as it passes; the last piece is sent only once
        the hash is the diff ID its name says."""
        label = diff_id.removeprefix("sha256:")[:12]
        yield _header(name, size)
        digest = hashlib.sha256()
        held: bytes | None = None
        done = 0
        while done < size:
            piece: bytes = handle.read(min(CHUNK, size - done))
            if not piece:
                raise EngineRefused(f"{what}: its stream ended inside layer {label}")
            digest.update(piece)
            done += len(piece)
            if held is not None:
                yield held
                self.progress(
                    ProgressEvent(item=label, status="from the engine", current=done, total=size)
                )
            held = piece
        if "sha256:" + digest.hexdigest() != diff_id:
            raise EngineRefused(
                f"{what}: its layer {label} does not hash to that diff ID; nothing was loaded"
            )
        if held is not None:
            yield held
        yield b"\0" * (-size % BLOCK)
        self.progress(ProgressEvent(item=label, status="added", current=size, total=size))
