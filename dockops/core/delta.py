"""Delta archives: a save-format tar without the layers the target engine already has.

The engine's load skips a layer file it does not need: for each layer of an image it looks up
the chain of diff IDs up to that layer, and opens the file only when that chain is missing.
So a layer may be left out when its whole chain (the image's layers up to and including it)
is the start of a base image's chain. The archive says what it left out in a first member,
dockops-delta.json (diff IDs, their chains, and the base images that provide them): `dockops
load` checks the target engine against it before loading anything, and a plain `docker load`
ignores the extra file.

Which tar member is which layer is known only once its bytes have been hashed (legacy save
format: `<v1 id>/layer.tar`), so members are written to an uncompressed temp file and a left-out
one is cut off again (seek + truncate) once its hash says so; the temp file then becomes the
output, or is compressed into it. Memory stays flat; the temp file holds only the delta.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from dockops.core.archive import ArchivedImage
from dockops.core.archive_io import CHUNK, tar_sink
from dockops.core.engine_http import get_stream
from dockops.core.lookup import inspect_image
from dockops.engine import engine_errors
from dockops.errors import EngineRefused, InvalidInput
from dockops.progress import ProgressCallback, ProgressEvent, ignore

if TYPE_CHECKING:
    import docker

DELTA_NAME = "dockops-delta.json"
FORMAT = 1
_BLOCK = 512


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
                found.setdefault(diff_id, Omitted(diff_id, index, i, providers))
            else:
                kept.add(diff_id)
    return {d: o for d, o in found.items() if d not in kept}


def archive_bases(path: Path) -> list[Base]:
    """The images of a save-format archive (plain or gzip), as bases: their configs' diff IDs.

    Raises:
        InvalidInput: not a readable save-format archive.
    """
    configs: dict[str, bytes] = {}
    manifest: list[dict[str, Any]] = []
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                small = member.isfile() and member.size < 4 * 1024 * 1024
                if small and member.name == "manifest.json":
                    handle = tar.extractfile(member)
                    manifest = json.loads(handle.read()) if handle else []
                elif small and (member.name.endswith(".json") or "blobs/" in member.name):
                    handle = tar.extractfile(member)
                    if handle:
                        configs[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise InvalidInput(f"--delta-from {path}: not a readable image archive ({exc})") from None
    bases = []
    for entry in manifest:
        raw = configs.get(str(entry.get("Config")))
        if raw is None:
            continue
        config = json.loads(raw)
        diff_ids = tuple((config.get("rootfs") or {}).get("diff_ids") or [])
        tags = entry.get("RepoTags") or []
        name = f"{path}:{tags[0]}" if tags else str(path)
        bases.append(Base(name, "sha256:" + hashlib.sha256(raw).hexdigest(), diff_ids))
    if not bases:
        raise InvalidInput(f"--delta-from {path}: no image in that archive")
    return bases


def resolve_bases(client: docker.DockerClient, names: list[str]) -> list[Base]:
    """Each --delta-from: an existing archive file, else a local image."""
    bases: list[Base] = []
    for name in names:
        if os.path.isfile(name):
            bases += archive_bases(Path(name))
            continue
        found = inspect_image(client, name, f"--delta-from {name}")
        layers = tuple((found.get("RootFS") or {}).get("Layers") or [])
        bases.append(Base(name, str(found["Id"]), layers))
    return bases


def _header(doc: dict[str, Any]) -> bytes:
    data = json.dumps(doc, indent=1, sort_keys=True).encode()
    info = tarfile.TarInfo(DELTA_NAME)
    info.size = len(data)
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % _BLOCK)


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
    out.write(b"\0" * (-size % _BLOCK))
    return "sha256:" + digest.hexdigest()


class _Counting:
    """The engine's stream, counting what passes (the full archive's size)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.raw.read(size)
        self.bytes += len(data)
        return data


def _write_delta(
    response: Any, out: BinaryIO, meta: dict[str, Any], omit: dict[str, Omitted], on: Any
) -> tuple[int, dict[str, int]]:
    """Copy the engine's tar into `out`, cutting off omitted layers; returns the full stream's
    size and the sizes of what was cut."""
    out.write(_header(meta))
    cut: dict[str, int] = {}
    source = _Counting(response.raw)
    with tarfile.open(fileobj=source, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            if member.name.startswith("blobs/sha256/") and (
                "sha256:" + member.name.rsplit("/", 1)[1] in omit
            ):
                cut["sha256:" + member.name.rsplit("/", 1)[1]] = member.size
                continue  # OCI layout: the name is the diff ID, nothing to read
            start = out.tell()
            out.write(member.tobuf(format=tarfile.PAX_FORMAT))
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                continue
            digest = _copy_member(handle, out, member.size)
            if digest in omit and (member.name.endswith("/layer.tar") or "blobs/" in member.name):
                out.seek(start)
                out.truncate()
                cut[digest] = member.size
            on(ProgressEvent("delta", "writing", out.tell()))
    out.write(b"\0" * (2 * _BLOCK))
    while source.read(CHUNK):  # the end-of-archive blocks, for the full size
        pass
    return source.bytes, cut


def save_delta(
    client: docker.DockerClient,
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
    found = [inspect_image(client, ref, f"save {ref}") for ref in references]
    bases = resolve_bases(client, base_names)
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
        response = get_stream(client, "/images/get", {"names": references}, what)
        try:
            with engine_errors(what):
                full, cut = _write_delta(response, spool, meta, omit, progress)
        except tarfile.TarError as exc:
            raise EngineRefused(f"{what}: the engine's stream is not a tar ({exc})") from None
        finally:
            response.close()
        spool.seek(0)
        with tar_sink(target, gzip=gzip) as (out, written):
            shutil.copyfileobj(spool, out, CHUNK)
    return DeltaResult(
        path=str(target) if isinstance(target, Path) else "-",
        bytes=written.bytes,
        full_bytes=full,
        sha256=written.sha256,
        compressed=gzip,
        images=tuple(
            ArchivedImage(r, str(f["Id"])) for r, f in zip(references, found, strict=True)
        ),
        omitted=tuple(
            Omitted(o.diff_id, o.image, o.position, o.provided_by, cut.get(o.diff_id))
            for o in omit.values()
        ),
    )


def read_delta(head: bytes) -> dict[str, Any] | None:
    """The delta record when `head` (the first bytes of an archive, gzip or not) starts with
    one; None for a full archive."""
    if head[:2] == b"\x1f\x8b":
        import zlib

        head = zlib.decompressobj(31).decompress(head, 4 * 1024 * 1024)
    if len(head) < _BLOCK:
        return None
    try:
        info = tarfile.TarInfo.frombuf(head[:_BLOCK], "utf-8", "surrogateescape")
    except tarfile.TarError:
        return None
    offset = _BLOCK
    if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):  # PAX header first: skip it
        offset += info.size + (-info.size % _BLOCK)
        try:
            info = tarfile.TarInfo.frombuf(
                head[offset : offset + _BLOCK], "utf-8", "surrogateescape"
            )
        except tarfile.TarError:
            return None
        offset += _BLOCK
    if info.name != DELTA_NAME or len(head) < offset + info.size:
        return None
    try:
        doc = json.loads(head[offset : offset + info.size])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def check_delta(client: docker.DockerClient, doc: dict[str, Any], name: str) -> None:
    """The engine must have every omitted layer's chain, or loading would fail half-way.

    Raises:
        EngineRefused: naming the base image(s) and layers the engine lacks.
    """
    import docker

    images = doc.get("images") or []
    try:
        needed = [
            (tuple(images[o["image"]]["diff_ids"][: o["position"] + 1]), o)
            for o in doc.get("omitted") or []
        ]
    except (IndexError, KeyError, TypeError):
        raise InvalidInput(f"load {name}: its {DELTA_NAME} is damaged") from None
    if not needed:
        return
    missing = [o for _, o in needed]

    def look_at(image_id: str) -> None:
        nonlocal missing
        try:
            found = client.api.inspect_image(image_id)
        except docker.errors.NotFound:
            return
        have = tuple((found.get("RootFS") or {}).get("Layers") or [])
        missing = [o for chain, o in needed if o in missing and have[: len(chain)] != chain]

    with engine_errors(f"load {name}"):
        # The bases the delta was cut against first: usually they hold every chain, and an
        # engine with many images is then asked two or three questions, not one per image.
        for base in doc.get("bases") or []:
            if missing and isinstance(base, dict) and base.get("id"):
                look_at(str(base["id"]))
        if missing:
            for image in client.api.images(all=True):
                look_at(image["Id"])
                if not missing:
                    break
    if missing:
        bases = sorted({b for o in missing for b in o.get("provided_by") or []})
        layers = ", ".join(str(o["diff_id"])[7:19] for o in missing)
        raise EngineRefused(
            f"load {name}: a delta archive; this engine lacks {len(missing)} of the layers it "
            f"leaves out ({layers}): load the base image first ({', '.join(bases)})"
        )
