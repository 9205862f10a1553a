"""The delta record: the first member of a delta archive, dockops-delta.json, saying which
layers the archive leaves out, which base images provide them, and whose layout the rest is in
(layout.py). Written here (the saving side is delta.py), read back at load, and checked against
the target engine before anything is loaded.

The record comes from a file, so every field is checked before it is used: a damaged one is
bad input, and nothing it names (chain lengths, entry counts) can make the check cost more
than the record's own size.
"""

from __future__ import annotations

import contextlib
import json
import re
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeGuard

from dockops.core.archive.files import GZIP_MAGIC
from dockops.core.archive.layout import DOCKER_OCI
from dockops.core.archive.tarcheck import NAME_SHOWN, TarProblem, TarWalker
from dockops.engine.errors import Missing
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput
from dockops.text import printable

if TYPE_CHECKING:
    from dockops.engine.api import Engine

DELTA_NAME = "dockops-delta.json"
FORMAT = 1
BLOCK = 512
# How much of a gzip archive's start is unpacked to look for the delta record.
_HEAD_LIMIT = 4 * 1024 * 1024
_DIGEST = re.compile(r"[a-z0-9]+:[0-9a-f]{32,128}")
# The engine's layer store refuses a chain deeper than 125 ("max depth exceeded"); a record
# naming longer chains did not come from an engine, and is refused before it costs anything.
MAX_LAYERS = 128


def record_member(doc: dict[str, Any]) -> bytes:
    """The record as a tar member (header, data, padding), to write first in the archive."""
    data = json.dumps(doc, indent=1, sort_keys=True).encode()
    info = tarfile.TarInfo(DELTA_NAME)
    info.size = len(data)
    info.mode = 0o644
    return info.tobuf(format=tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % BLOCK)


def json_or_none(raw: bytes) -> Any:
    """A JSON document, or None when it is not one (deep nesting included)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


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
    doc = json_or_none(walker.kept[0][1])
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
        if not strings(diff_ids) or not all(map(_digest, diff_ids)):
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
        if entry.get("diff_id") != chains[index][position] or not strings(entry.get("provided_by")):
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


def read_as_oci(doc: dict[str, Any]) -> bool:
    """Podman reads a Docker 25+ archive of one image as OCI, which skips a layer it holds; any
    other it reads as a docker-archive, which needs every layer file in the tar ("Some layer
    tarfiles are missing in the tarball", whatever it holds), so splice.py puts them back.
    Records from before the layout was written are taken as docker-archives."""
    images = doc.get("images")
    return doc.get("layout") == DOCKER_OCI and isinstance(images, list) and len(images) == 1


@dataclass(frozen=True)
class Held:
    """Where the engine holds the layers a delta leaves out."""

    layers: frozenset[str]  # the diff IDs left out
    images: tuple[str, ...]  # IDs of the engine's images that hold them all between them


def check_delta(engine: Engine, doc: dict[str, Any], name: str) -> Held:
    """The engine must have every omitted layer's chain, or loading would fail half-way.

    Returns:
        The omitted layers, and the engine's images that hold them (what splice.py saves).

    Raises:
        InvalidInput: the record is damaged (checked before the engine is asked).
        EngineRefused: naming the base image(s) and layers the engine lacks.
    """
    needed = needed_chains(doc, name)
    if not needed:
        return Held(layers=frozenset(), images=())
    what = f"load {name}"
    missing = list(needed)
    providers: list[str] = []

    def look_at(image_id: str) -> None:
        nonlocal missing
        try:
            found = engine.image(image_id, what)
        except Missing:
            return
        have = tuple((found.get("RootFS") or {}).get("Layers") or [])
        shared: dict[int, int] = {}  # id(chain) -> how many leading layers `have` shares
        for n in missing:
            if id(n.chain) not in shared:
                shared[id(n.chain)] = _common_prefix(have, n.chain)
        left = [n for n in missing if shared[id(n.chain)] <= n.position]
        if len(left) < len(missing):
            providers.append(str(found.get("Id") or image_id))
        missing = left

    # The bases the delta was cut against first: usually they hold every chain, and an
    # engine with many images is then asked two or three questions, not one per image.
    for base in doc.get("bases") or []:
        if missing:
            look_at(base["id"])
    if missing:
        try:
            listing = engine.images(all=True)
        except EngineRefused as exc:
            raise EngineRefused(f"{what}: {exc.message}") from exc
        except EngineUnreachable as exc:
            raise EngineUnreachable(f"{what}: {exc.message}") from exc
        for image in listing:
            look_at(image["Id"])
            if not missing:
                break
    if missing:
        bases = sorted({printable(b, NAME_SHOWN) for n in missing for b in n.entry["provided_by"]})
        layers = ", ".join(str(n.entry["diff_id"])[7:19] for n in missing)
        raise EngineRefused(
            f"{what}: a delta archive; this engine lacks {len(missing)} of the layers it "
            f"leaves out ({layers}): load the base image first ({', '.join(bases)})"
        )
    return Held(layers=frozenset(str(n.entry["diff_id"]) for n in needed), images=tuple(providers))
