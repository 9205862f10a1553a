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

import bz2
import contextlib
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeGuard, cast

from dockops.core.archive.files import (
    CHUNK,
    GZIP_MAGIC,
    HeadFirst,
    gzip_errors,
    read_head,
    tar_sink,
)
from dockops.core.archive.save_load import ArchivedImage
from dockops.core.archive.tarcheck import NAME_SHOWN, TarProblem, TarWalker
from dockops.engine.address import engine_errors
from dockops.engine.http import get_stream
from dockops.engine.named import inspect_image
from dockops.errors import EngineRefused, InvalidInput
from dockops.progress import ProgressCallback, ProgressEvent, ignore
from dockops.text import printable

if TYPE_CHECKING:
    import docker

DELTA_NAME = "dockops-delta.json"
FORMAT = 1
_BLOCK = 512
# A base archive's configs come before the manifest.json that says which members they are,
# so JSON members are kept until it is read: each under _MEMBER_LIMIT, all under
# METADATA_LIMIT (an image's config is a few KiB; the limit is thousands of images).
_MEMBER_LIMIT = 4 * 1024 * 1024
METADATA_LIMIT = 64 * 1024 * 1024
# How much of a gzip archive's start is unpacked to look for the delta record.
_HEAD_LIMIT = 4 * 1024 * 1024
_DIGEST = re.compile(r"[a-z0-9]+:[0-9a-f]{32,128}")
# The engine's layer store refuses a chain deeper than 125 ("max depth exceeded"); a record
# naming longer chains did not come from an engine, and is refused before it costs anything.
MAX_LAYERS = 128


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
        return size <= _MEMBER_LIMIT and (member.endswith(".json") or "blobs/" in member)

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

    manifest = _json(kept.get("manifest.json", b"[]"))
    if not isinstance(manifest, list) or not all(isinstance(e, dict) for e in manifest):
        raise damaged("its manifest.json is not a list of images")
    bases = []
    for entry in manifest:
        config_name, tags = entry.get("Config"), entry.get("RepoTags") or []
        if not isinstance(config_name, str) or not _strings(tags):
            raise damaged("its manifest.json is not a list of images")
        raw = kept.get(config_name)
        if raw is None:
            continue
        config = _json(raw)
        rootfs = config.get("rootfs") if isinstance(config, dict) else None
        diff_ids = (rootfs.get("diff_ids") or []) if isinstance(rootfs, dict) else None
        if not _strings(diff_ids):
            raise damaged(f"'{printable(config_name, NAME_SHOWN)}' is not an image config")
        label = f"{name}:{tags[0]}" if tags else name
        bases.append(
            Base(
                name=label, id="sha256:" + hashlib.sha256(raw).hexdigest(), diff_ids=tuple(diff_ids)
            )
        )
    return bases


def _json(raw: bytes) -> Any:
    """A JSON document, or None when it is not one (deep nesting included)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def resolve_bases(client: docker.DockerClient, names: list[str]) -> list[Base]:
    """Each --delta-from: an existing archive file, else a local image."""
    bases: list[Base] = []
    for name in names:
        if os.path.isfile(name):
            bases += archive_bases(Path(name))
            continue
        found = inspect_image(client, name, f"--delta-from {name}")
        layers = tuple((found.get("RootFS") or {}).get("Layers") or [])
        bases.append(Base(name=name, id=str(found["Id"]), diff_ids=layers))
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
            on(ProgressEvent(item="delta", status="writing", current=out.tell()))
    out.write(b"\0" * (2 * _BLOCK))
    while source.read(CHUNK):  # the end-of-archive blocks, for the full size
        pass
    source.walker.finish()
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
        except TarProblem as exc:
            raise EngineRefused(f"{what}: {exc.engine_error or exc.message}") from None
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
            ArchivedImage(reference=r, id=str(f["Id"]))
            for r, f in zip(references, found, strict=True)
        ),
        omitted=tuple(
            Omitted(
                diff_id=o.diff_id,
                image=o.image,
                position=o.position,
                provided_by=o.provided_by,
                size=cut.get(o.diff_id),
            )
            for o in omit.values()
        ),
    )


def read_delta(head: bytes) -> dict[str, Any] | None:
    """The delta record when `head` (the first bytes of an archive, gzip or not) starts with
    one; None for a full archive, or anything else (the load's own walk says what is wrong).
    A record that is not a JSON object is {}, which check_delta refuses as damaged."""
    if head[:2] == GZIP_MAGIC:
        import zlib

        try:
            head = zlib.decompressobj(31).decompress(head, _HEAD_LIMIT)
        except zlib.error:
            return None

    def first(name: str, size: int) -> bool:
        return walker.members == 1 and name == DELTA_NAME

    walker = TarWalker(first)
    with contextlib.suppress(TarProblem):  # past the record, maybe: the load's walk says it
        walker.feed(head)
    if not walker.kept:
        return None
    doc = _json(walker.kept[0][1])
    return doc if isinstance(doc, dict) else {}


@dataclass(frozen=True)
class Needed:
    """An omitted layer: the engine must hold `chain[: position + 1]` (the chain is shared
    with the record, never copied per layer: a record is small, what it names need not be)."""

    chain: tuple[str, ...]
    position: int
    entry: dict[str, Any]


def needed_chains(doc: dict[str, Any], name: str) -> list[Needed]:
    """Each omitted layer of a delta record with the chain of diff IDs the engine must hold
    (pure: the record comes from the archive, so every field is checked).

    Raises:
        InvalidInput: the record is not one this dockops writes.
    """
    damaged = InvalidInput(f"load {name}: its {DELTA_NAME} is damaged")
    images, omitted, bases = doc.get("images"), doc.get("omitted"), doc.get("bases", [])
    if doc.get("format") != FORMAT or not isinstance(images, list):
        raise damaged
    if not isinstance(omitted, list) or not isinstance(bases, list):
        raise damaged
    chains = []
    for image in images:
        diff_ids = image.get("diff_ids") if isinstance(image, dict) else None
        if not _strings(diff_ids) or not all(map(_digest, diff_ids)):
            raise damaged
        if len(diff_ids) > MAX_LAYERS:
            raise damaged
        chains.append(tuple(diff_ids))
    # Each layer of each image is left out once at most: a record naming more is not ours,
    # and would have check_delta compare without end.
    if len(omitted) > sum(map(len, chains)):
        raise damaged
    needed: list[Needed] = []
    seen: set[tuple[int, int]] = set()
    for entry in omitted:
        if not isinstance(entry, dict):
            raise damaged
        index, position = entry.get("image"), entry.get("position")
        if not (_index(index, len(chains)) and _index(position, len(chains[index]))):
            raise damaged
        if entry.get("diff_id") != chains[index][position] or not _strings(
            entry.get("provided_by")
        ):
            raise damaged
        if (index, position) in seen:
            raise damaged
        seen.add((index, position))
        needed.append(Needed(chain=chains[index], position=position, entry=entry))
    # Base IDs go into the engine's URLs: digests only.
    if not all(isinstance(b, dict) and _digest(b.get("id")) for b in bases):
        raise damaged
    return needed


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # chains of different lengths, by design
        if x != y:
            break
        n += 1
    return n


def _index(value: Any, length: int) -> TypeGuard[int]:
    return type(value) is int and 0 <= value < length


def _digest(value: Any) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def check_delta(client: docker.DockerClient, doc: dict[str, Any], name: str) -> None:
    """The engine must have every omitted layer's chain, or loading would fail half-way.

    Raises:
        EngineRefused: naming the base image(s) and layers the engine lacks.
    """
    import docker

    needed = needed_chains(doc, name)
    if not needed:
        return
    missing = list(needed)

    def look_at(image_id: str) -> None:
        nonlocal missing
        try:
            found = client.api.inspect_image(image_id)
        except docker.errors.NotFound:
            return
        have = tuple((found.get("RootFS") or {}).get("Layers") or [])
        shared: dict[int, int] = {}  # id(chain) -> how many leading layers `have` shares
        for n in missing:
            if id(n.chain) not in shared:
                shared[id(n.chain)] = _common_prefix(have, n.chain)
        missing = [n for n in missing if shared[id(n.chain)] <= n.position]

    with engine_errors(f"load {name}"):
        # The bases the delta was cut against first: usually they hold every chain, and an
        # engine with many images is then asked two or three questions, not one per image.
        for base in doc.get("bases") or []:
            if missing:
                look_at(base["id"])
        if missing:
            for image in client.api.images(all=True):
                look_at(image["Id"])
                if not missing:
                    break
    if missing:
        bases = sorted({printable(b, NAME_SHOWN) for n in missing for b in n.entry["provided_by"]})
        layers = ", ".join(str(n.entry["diff_id"])[7:19] for n in missing)
        raise EngineRefused(
            f"load {name}: a delta archive; this engine lacks {len(missing)} of the layers it "
            f"leaves out ({layers}): load the base image first ({', '.join(bases)})"
        )
