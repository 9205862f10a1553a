"""What prune-images plans from: the engine's images with their tags and last tag times, the
containers with their times, and the bytes the images take; read once, at the start of a run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dockops.core.cleanup.limits import filesystem_bytes
from dockops.core.cleanup.retention import ContainerUse, TaggedImage, matches
from dockops.core.cleanup.snapshot import read_listing, settled
from dockops.core.images.listing import tags_of
from dockops.engine.errors import Missing
from dockops.reference import familiar_name, qualified_id
from dockops.units import parse_timestamp

if TYPE_CHECKING:
    from dockops.engine.api import Engine

# Inspects in flight at once: the engine answers them in parallel; more than this gains
# nothing on a small host and crowds a busy one.
INSPECTS = 8
# Go's zero time ("0001-01-01T00:00:00Z"): an image never tagged, a container never started.
_NEVER = datetime(1971, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Tagged:
    """One reading of the engine for prune-images."""

    images: tuple[TaggedImage, ...]
    containers: tuple[ContainerUse, ...]
    images_bytes: int | None
    filesystem_bytes: int | None


def read_tagged(
    engine: Engine, references: tuple[str, ...] = (), *, measure_filesystem: bool = False
) -> Tagged:
    """Read every image, every container and the images' total from `engine`.

    Args:
        engine: the engine.
        references: --reference globs: only images with a tag they match are inspected for
            their last tag time (the others are no candidates; an empty tuple is every image).
        measure_filesystem: also measure the filesystem of the engine's root (for a --max-disk
            percentage); None in the answer when it is not on this machine.

    Raises:
        EngineRefused, EngineUnreachable: from the engine.
    """
    found = read_listing(engine)
    parents = found.parents
    familiar: dict[str, dict[str, str]] = {
        i["Id"]: {familiar_name(t): t for t in tags_of(i)} for i in found.images
    }
    wanted = [
        i["Id"]
        for i in found.images
        if any(not references or matches(references, t) for t in familiar[i["Id"]])
    ]
    tagged_at = _each(wanted, lambda image_id: _last_tagged(engine, image_id))
    used = _each([str(c["Id"]) for c in found.containers], lambda c: _container_times(engine, c))
    images = tuple(
        TaggedImage(
            id=i["Id"],
            tags=tuple(familiar[i["Id"]]),
            size=found.sizes.get(i["Id"], int(i.get("Size") or 0)),
            created=datetime.fromtimestamp(i["Created"], tz=timezone.utc),
            last_tagged=tagged_at.get(i["Id"]),
            labels=i.get("Labels") or {},
            has_children=i["Id"] in parents,
        )
        for i in found.images
    )
    containers = tuple(
        ContainerUse(
            id=str(c["Id"]),
            image=qualified_id(str(c["ImageID"])),
            created=datetime.fromtimestamp(int(c.get("Created") or 0), tz=timezone.utc),
            started=used.get(str(c["Id"]), (None, None))[0],
            finished=used.get(str(c["Id"]), (None, None))[1],
        )
        for c in found.containers
    )
    return Tagged(
        images=images,
        containers=containers,
        images_bytes=found.images_bytes,
        filesystem_bytes=_engine_filesystem(engine) if measure_filesystem else None,
    )


def _each(keys: Iterable[str], read: Callable[[str], Any]) -> dict[str, Any]:
    """`read(key)` for every key, INSPECTS at once; keys whose object went are left out."""
    keys = list(keys)
    if not keys:
        return {}
    with ThreadPoolExecutor(max_workers=min(INSPECTS, len(keys))) as pool:
        answers = list(pool.map(read, keys))
    return {k: a for k, a in zip(keys, answers, strict=True) if a is not None}


def _when(text: object) -> datetime | None:
    when = parse_timestamp(str(text or ""))
    return when if when is not None and when > _NEVER else None


def _last_tagged(engine: Engine, image_id: str) -> datetime | None:
    """Metadata.LastTagTime: the daemon sets it on every tag it adds (pull, load, build,
    commit, tag). None when the engine keeps none (Podman writes Go's zero time) or the image
    went since the listing."""
    try:
        image = settled(lambda: engine.image(image_id))
    except Missing:
        return None
    return _when((image.get("Metadata") or {}).get("LastTagTime"))


def _container_times(
    engine: Engine, container_id: str
) -> tuple[datetime | None, datetime | None] | None:
    """The last start and finish of a container (the list says only its creation)."""
    try:
        state = engine.container(container_id).get("State") or {}
    except Missing:
        return None  # removed since the listing: its creation still counts
    return _when(state.get("StartedAt")), _when(state.get("FinishedAt"))


def _engine_filesystem(engine: Engine) -> int | None:
    """The size of the filesystem the engine keeps its images on, when that is on this machine:
    the engine's root as /info names it (both engines fill in DockerRootDir)."""
    root = str(engine.info().get("DockerRootDir") or "")
    if not root or not engine.address.startswith("unix://"):
        return None
    return filesystem_bytes(root)
