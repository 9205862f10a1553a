"""Listing images with the containers that hold them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockops.engine.api import Engine

NONE = "<none>"


@dataclass(frozen=True)
class ImageRow:
    """One row of `dockops images`: one per repository:tag, or one for an untagged image."""

    repository: str
    tag: str
    id: str
    created: datetime
    size: int
    containers: tuple[str, ...]

    @property
    def dangling(self) -> bool:
        return self.repository == NONE and self.tag == NONE


def containers_by_image(engine: Engine) -> dict[str, tuple[str, ...]]:
    """Map image ID → names of the containers (running or stopped) created from it."""
    return holders_by_image(engine.containers(all=True))


def holders_by_image(containers: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Map image ID → names of `containers` (the engine's container list) created from it."""
    holders: dict[str, list[str]] = defaultdict(list)
    for container in containers:
        names = container.get("Names") or [container["Id"][:12]]
        holders[container["ImageID"]].append(names[0].lstrip("/"))
    return {image: tuple(sorted(names)) for image, names in holders.items()}


def tags_of(image: Mapping[str, Any]) -> list[str]:
    """The real tags of an image summary or inspect document (the engine writes
    `<none>:<none>` for none on some paths)."""
    return [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]


def _names(image: dict[str, Any]) -> list[tuple[str, str]]:
    tags = tags_of(image)
    if tags:
        return [(repository, tag) for repository, _, tag in (t.rpartition(":") for t in tags)]
    # Pulled by digest only: the CLI shows the repository with a <none> tag.
    digests = [d for d in image.get("RepoDigests") or [] if d != "<none>@<none>"]
    if digests:
        return sorted({(d.split("@", 1)[0], NONE) for d in digests})
    return [(NONE, NONE)]


def list_images(
    engine: Engine, *, dangling: bool = False, reference: str | None = None
) -> list[ImageRow]:
    """List images, newest first, with the containers using each.

    Args:
        engine: the engine.
        dangling: only untagged images.
        reference: only images matching this repository[:tag] pattern (the engine's filter).

    Returns:
        One ImageRow per repository:tag (an image with two tags is two rows).

    Raises:
        EngineRefused, EngineUnreachable: from the engine.
    """
    filters: dict[str, list[str]] = {}
    if dangling:
        filters["dangling"] = ["true"]
    if reference is not None:
        filters["reference"] = [reference]
    # Top-level images only, as `docker images` lists them.
    images = engine.images(all=False, filters=filters)
    holders = containers_by_image(engine)
    rows = [
        ImageRow(
            repository=repository,
            tag=tag,
            id=image["Id"],
            created=datetime.fromtimestamp(image["Created"], tz=timezone.utc),
            size=int(image.get("Size") or 0),
            containers=holders.get(image["Id"], ()),
        )
        for image in images
        for repository, tag in _names(image)
    ]
    rows.sort(key=lambda row: (-row.created.timestamp(), row.repository, row.tag))
    return rows
