"""Listing images with the containers that hold them.

Names are shown in docker's familiar form on both engines (podman stores docker.io/x/y:t and
localhost/y:t; localhost/ stays). A REPOSITORY[:TAG] filter goes to the engine as typed: docker
keeps the matching names of each image, podman returns the whole image when one of its names
matches (`podman images foo` lists bar:1 too when bar:1 and localhost/foo:1 are one image), so
dockops keeps the names that match, by podman's own rule: the pattern against the full name,
the name without its registry, and its last component, each with and without the tag.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dockops.reference import familiar_name, qualified_id

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
        holders[qualified_id(str(container["ImageID"]))].append(names[0].lstrip("/"))
    return {image: tuple(sorted(names)) for image, names in holders.items()}


def tags_of(image: Mapping[str, Any]) -> list[str]:
    """The real tags of an image summary or inspect document (the engine writes
    `<none>:<none>` for none on some paths)."""
    return [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]


def _names(image: dict[str, Any], pattern: str | None = None) -> list[tuple[str, str]]:
    """(repository, tag) per name, familiar; with `pattern` (podman), the names it matches, or
    all of them when none does (the engine matched the image by ID)."""
    tags = tags_of(image)
    if pattern is not None:
        tags = [t for t in tags if podman_matches(pattern, t)] or tags
    if tags:
        return [
            (repository, tag)
            for repository, _, tag in (familiar_name(t).rpartition(":") for t in tags)
        ]
    # Pulled by digest only: the CLI shows the repository with a <none> tag.
    digests = [d for d in image.get("RepoDigests") or [] if d != "<none>@<none>"]
    if digests:
        return sorted({(familiar_name(d).split("@", 1)[0], NONE) for d in digests})
    return [(NONE, NONE)]


def _go_glob(pattern: str) -> re.Pattern[str]:
    """Go's path.Match, which docker and podman match reference filters with: * and ? stop at
    "/", [...] is a class, a backslash escapes."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def podman_matches(pattern: str, name: str) -> bool:
    """Does a reference filter match one stored name, as podman's libimage decides (the full
    name, the path without the registry, the last component; each with and without the tag or
    digest)? `foo` matches localhost/foo:1 and docker.io/library/foo:2, not docker.io/x/bar."""
    if "@" in name:
        repository, at, digest = name.partition("@")
        suffix = at + digest
    elif (colon := name.rfind(":")) > name.rfind("/"):
        repository, suffix = name[:colon], name[colon:]
    else:
        repository, suffix = name, ""
    first, slash, rest = repository.partition("/")
    path = rest if slash and ("." in first or ":" in first or first == "localhost") else repository
    last = repository.rsplit("/", 1)[-1]
    glob = _go_glob(pattern)
    candidates = (name, repository, path, path + suffix, last, last + suffix)
    return any(glob.fullmatch(candidate) for candidate in candidates)


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
    pattern = reference if reference is not None and engine.is_podman else None
    rows = [
        ImageRow(
            repository=repository,
            tag=tag,
            id=qualified_id(str(image["Id"])),
            created=datetime.fromtimestamp(image["Created"], tz=timezone.utc),
            size=int(image.get("Size") or 0),
            containers=holders.get(qualified_id(str(image["Id"])), ()),
        )
        for image in images
        for repository, tag in _names(image, pattern)
    ]
    rows.sort(key=lambda row: (-row.created.timestamp(), row.repository, row.tag))
    return rows
