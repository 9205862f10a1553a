"""One snapshot of an engine's images for prune-dangling, and reading an engine that another
process is deleting from at the same time."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from dockops.core.images.listing import holders_by_image, tags_of
from dockops.engine.errors import Missing
from dockops.errors import EngineRefused

if TYPE_CHECKING:
    from dockops.engine.api import Engine

_T = TypeVar("_T")

# What an engine says of an image another process is deleting at that very moment: 20.10's
# "layer does not exist" (two deletes racing inside the daemon). Podman's storage says "image
# not known", "layer not known" or "size is not known" in a 500 to a listing, an inspect or a
# delete that meets an image half-deleted ("failed to convert ImageData to ImageInspect ...:
# image not known", "list images: retrieving parent of image ...: size is not known"), and to
# a delete by ID of one that went during it, which it then reads as a name ("cannot specify
# 64-byte hexadecimal strings").
VANISHING = (
    "layer does not exist",
    "image not known",
    "layer not known",
    "size is not known",
    "cannot specify 64-byte hexadecimal strings",
)


@dataclass(frozen=True)
class ImageState:
    """What planning needs to know of one image, from one snapshot of the engine."""

    id: str
    created: datetime
    size: int
    tagged: bool
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[str, ...] = ()
    has_children: bool = False


def settled(read: Callable[[], _T]) -> _T:
    """`read()`, asked again while the engine fails it on an image another process is deleting
    (Podman lists and inspects through every image, and fails the whole answer on one that
    went half-way). Bounded: a store that stays broken stays a failure."""
    for attempt in range(5):
        try:
            return read()
        except Missing:
            raise
        except EngineRefused as exc:
            if attempt == 4 or not any(words in exc.message for words in VANISHING):
                raise
        time.sleep(random.uniform(0.05, 0.3))
    raise AssertionError("unreachable")  # pragma: no cover


def _image_id(ident: str) -> str:
    """An image ID as the image list writes it: Podman writes ParentId without "sha256:"."""
    return ident if not ident or ident.startswith("sha256:") else f"sha256:{ident}"


def _unique_sizes(images: list[dict[str, Any]]) -> dict[str, int]:
    """Bytes each image holds alone (what deleting it frees): Size minus SharedSize, which
    API 1.42+ gives in the image list and older engines only through /system/df."""
    return {
        i["Id"]: max(0, int(i.get("Size") or 0) - max(0, int(i.get("SharedSize") or 0)))
        for i in images
    }


def _disk_usage(engine: Engine) -> dict[str, Any]:
    """GET /system/df, waiting out what another run going at the same time causes: the daemon
    runs one df at a time and refuses the others with 409 "a disk usage operation is already
    running" (two prunes, or a prune and a monitoring agent's `docker system df`), and a df
    that meets a delete half-done fails with "layer ... was not found (corruption?)"."""
    deadline = time.monotonic() + 60
    half_done = 0
    while True:
        try:
            return engine.disk_usage()
        except EngineRefused as exc:
            if "already running" in exc.message and time.monotonic() < deadline:
                pass
            elif "(corruption?)" in exc.message and half_done < 5:  # a real one stays: bounded
                half_done += 1
            else:
                raise
        time.sleep(random.uniform(0.05, 0.5))


def _sizes_apart(engine: Engine, shared_size: bool) -> tuple[dict[str, int] | None, int | None]:
    """The unique sizes, when the image list does not carry them (None: it does), and the bytes
    the engine's images take on its disk as its df says (None when df was not asked).

    Podman's compat answers say SharedSize 0 for every image (list and df alike), so their Size
    counts the base layers an image shares with others and a reclaimed total made of them is
    far too high: its own df (libpod) says UniqueSize, and ImagesSize for the whole.
    """
    if engine.is_podman:
        usage = settled(engine.podman_disk_usage)
        sizes = {
            _image_id(str(i["ImageID"])): max(0, int(i.get("UniqueSize") or 0))
            for i in usage.get("Images") or []
        }
        total = usage.get("ImagesSize")
        return sizes, int(total) if total is not None else None
    if shared_size:
        return None, None
    usage = _disk_usage(engine)
    total = usage.get("LayersSize")
    return _unique_sizes(usage.get("Images") or []), int(total) if total is not None else None


def _api_at_least(version: str, wanted: tuple[int, int]) -> bool:
    major, _, minor = version.partition(".")
    return (int(major), int(minor)) >= wanted


@dataclass(frozen=True)
class Listing:
    """The engine's image list, container list, each image's unique size and (when the engine's
    df says it) the bytes its images take, read at once."""

    images: list[dict[str, Any]]
    containers: list[dict[str, Any]]
    sizes: dict[str, int]
    images_bytes: int | None

    @property
    def parents(self) -> set[str]:
        return {_image_id(i.get("ParentId") or "") for i in self.images} - {""}


def read_listing(engine: Engine) -> Listing:
    """The image list, the container list and the images' sizes, asked at once.

    Raises:
        EngineRefused, EngineUnreachable: from the engine.
    """
    # Three requests at once: the engine answers them in parallel, and on a cron run with
    # nothing to remove they are most of the time after start-up.
    # Not before engine/negotiate.py's NEWEST reaches 1.42: dockops speaks 1.41 at most.
    shared_size = _api_at_least(engine.api_version, (1, 42))
    with ThreadPoolExecutor(max_workers=3) as pool:
        listing = pool.submit(settled, lambda: engine.images(shared_size=shared_size))
        usage = pool.submit(_sizes_apart, engine, shared_size)
        holding = pool.submit(engine.containers)
        images, (apart, total) = listing.result(), usage.result()
        containers = holding.result()
    sizes = _unique_sizes(images) if apart is None else apart
    return Listing(images=images, containers=containers, sizes=sizes, images_bytes=total)


def engine_state(engine: Engine) -> list[ImageState]:
    """One snapshot of every image, with its holders, children and unique size.

    Raises:
        EngineRefused, EngineUnreachable: from the engine.
    """
    found = read_listing(engine)
    images, sizes, parents = found.images, found.sizes, found.parents
    holders = holders_by_image(found.containers)
    return [
        ImageState(
            id=i["Id"],
            created=datetime.fromtimestamp(i["Created"], tz=timezone.utc),
            size=sizes.get(i["Id"], int(i.get("Size") or 0)),
            tagged=bool(tags_of(i)),
            labels=i.get("Labels") or {},
            containers=holders.get(i["Id"], ()),
            has_children=i["Id"] in parents,
        )
        for i in images
    ]
