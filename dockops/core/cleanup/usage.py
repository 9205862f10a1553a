"""Last use without a resident daemon: the engine's events since the last run, and a small
usage record kept between runs, so a container that ran and was removed between two cron runs
still counts as a use of its image.

prune-images reads the record, asks the engine for its events since the record's end, merges
both into each image's last use, and (not in a dry run) writes the record again:

    record = read_record(path)
    sightings = engine_sightings(engine, record.events_until, now)
    usage = merge_usage(record, sightings, snapshot.images)
    ...
    write_record(path, uses, present_ids, now, engine=engine.address)

The record (usage_record.py) is where it is and what it holds; this module is what the engine
says and how a name in an event becomes an image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from dockops.core.cleanup.retention import LastUse, TaggedImage
from dockops.core.cleanup.usage_record import (
    RECORD_SOURCE,
    UsageRecord,
    default_record_path,
    read_record,
    write_record,
)
from dockops.errors import InvalidInput
from dockops.reference import familiar_name, is_image_id, parse_reference, qualified_id
from dockops.text import printable
from dockops.units import short_id

if TYPE_CHECKING:
    from dockops.engine.api import Engine

__all__ = [
    "EVENTS_OVERLAP",
    "FIRST_WINDOW",
    "Sighting",
    "UsageRecord",
    "default_record_path",
    "engine_sightings",
    "merge_usage",
    "read_record",
    "write_record",
]

# How far back a run without a record (the first, or after damage) reads the events. dockerd
# holds only its last 256 events anyway; Podman's log may hold months of them (its 4.3 file
# log is read from the start for every request, and sent back from `since` on): a week covers
# any sensible interval between two runs without shipping a host's whole history.
FIRST_WINDOW = timedelta(days=7)

# Podman writes an event to its log just after the request that made it has returned (seen
# on 4.3: 50-100 ms later), stamped with when it happened: a run that read up to T may miss one
# stamped just before T. So the next run starts this much before T; an event read twice
# changes nothing (the newest use wins).
EVENTS_OVERLAP = timedelta(seconds=5)

# Container actions that are a use of the container's image; Podman's libpod says "died"
# where the compat API should say "die" (4.3's compat answer already says "die").
_CONTAINER_USES = {"create": "created", "start": "started", "die": "finished", "died": "finished"}
# Image actions that are a use: what put the image or a name of it on the host. dockerd names
# the image by ID in Actor.ID (tag, load, import) or, for pull, by the pulled reference;
# Podman by bare hex ID with the full name in Attributes.name. Podman's load is
# "loadfromarchive" naming only the temp file: it says nothing of the image.
_IMAGE_USES = {"pull": "pulled", "tag": "tagged", "load": "loaded", "import": "imported"}
_ENGINE_EVENT = "engine event"


@dataclass(frozen=True)
class Sighting:
    """An engine event that used an image: `subject` names the image as the event gives it
    (an ID with or without sha256:, a short ID, or a name), `source` says what happened."""

    subject: str
    when: datetime
    source: str


def engine_sightings(engine: Engine, since: datetime | None, until: datetime) -> list[Sighting]:
    """The uses of images among the engine's events from `since` to `until`.

    Reading starts EVENTS_OVERLAP before `since`; with no `since` (no record, or a damaged
    one), or one after `until` (the clock went back), the last FIRST_WINDOW is read.

    Raises:
        EngineRefused: the engine's answer is not JSON lines.
        EngineUnreachable: lost the engine.
    """
    since = until - FIRST_WINDOW if since is None or since > until else since - EVENTS_OVERLAP
    events = engine.events(
        since, until, {"type": ["container", "image"]}, what="read the engine's events"
    )
    sightings: list[Sighting] = []
    for event in events:
        sightings.extend(_sightings(event))
    return sightings


def _sightings(event: Mapping[str, Any]) -> list[Sighting]:
    """The image uses one event names: none for an event that uses no image or is malformed."""
    when = _event_time(event)
    actor = event.get("Actor")
    if when is None or not isinstance(actor, dict):
        return []
    attributes = actor.get("Attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    kind, action = event.get("Type"), event.get("Action") or event.get("status")
    if not isinstance(action, str):
        return []
    actor_id = actor.get("ID")
    actor_id = actor_id if isinstance(actor_id, str) else ""
    if kind == "container" and action in _CONTAINER_USES:
        image = attributes.get("image") or event.get("from")
        if not isinstance(image, str) or not image:
            return []
        source = f"container {short_id(actor_id)} {_CONTAINER_USES[action]} ({_ENGINE_EVENT})"
        return [Sighting(subject=image, when=when, source=printable(source, limit=200))]
    if kind == "image" and action in _IMAGE_USES:
        name = attributes.get("name")
        name = name if isinstance(name, str) else ""
        named = f" {familiar_name(name)}" if action == "tag" and name else ""
        source = printable(f"image {_IMAGE_USES[action]}{named} ({_ENGINE_EVENT})", limit=200)
        subjects = dict.fromkeys(s for s in (actor_id, name) if s)
        return [Sighting(subject=s, when=when, source=source) for s in subjects]
    return []


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    nanos = event.get("timeNano")
    if isinstance(nanos, int) and not isinstance(nanos, bool):
        seconds, rest = divmod(nanos, 1_000_000_000)
        return datetime.fromtimestamp(seconds, timezone.utc) + timedelta(microseconds=rest // 1000)
    whole = event.get("time")
    if isinstance(whole, int) and not isinstance(whole, bool):
        return datetime.fromtimestamp(whole, timezone.utc)
    return None


class _Resolver:
    """Which present image a subject names, as the engine would resolve it today."""

    def __init__(self, images: Iterable[TaggedImage]) -> None:
        self.ids = {qualified_id(i.id) for i in images}
        self.by_name: dict[str, str] = {}
        for image in images:
            for tag in image.tags:
                if (name := _familiar(tag)) is not None:
                    self.by_name[name] = qualified_id(image.id)

    def __call__(self, subject: str) -> str | None:
        subject = subject.strip()
        hexdigits = subject.removeprefix("sha256:")
        if (full := qualified_id(hexdigits)) != hexdigits:  # a whole ID: exactly that image
            return full if full in self.ids else None
        # Docker's own order for anything shorter: the name first, then a unique ID prefix.
        if (named := self._by_name(subject)) is not None:
            return named
        if is_image_id(subject):
            hits = [i for i in self.ids if i.removeprefix("sha256:").startswith(hexdigits)]
            return hits[0] if len(hits) == 1 else None
        return None

    def _by_name(self, subject: str) -> str | None:
        name = _familiar(subject)
        if name is None:
            return None
        found = self.by_name.get(name)
        if found is None and not name.startswith("localhost/"):
            # Podman resolves a bare name to localhost/NAME for an image built or
            # committed there, and may name it either way.
            found = self.by_name.get(_familiar(f"localhost/{name}") or "")
        return found


def _familiar(name: str) -> str | None:
    """A name in familiar form with its tag (latest when none), or None: a digest reference
    names a manifest, not an image ID, and text that is no reference names nothing."""
    try:
        reference = parse_reference(name).familiar()
    except InvalidInput:
        return None
    if reference.digest is not None:
        return None
    return f"{reference.repository}:{reference.tag or 'latest'}"


def merge_usage(
    record: UsageRecord, sightings: Iterable[Sighting], images: Iterable[TaggedImage]
) -> dict[str, LastUse]:
    """Each present image's newest use known beyond the engine's own state: the record's
    entries, the engine's sightings (resolved to image IDs; a subject that names no present
    image is dropped), and, for a damaged record, its floor: every image counts as used at
    least when the record was last written, since the run that wrote it saw them all.

    Returns:
        Image ID (sha256:...) -> its newest use and what says so; images with none are absent.
    """
    images = tuple(images)
    resolve = _Resolver(images)
    uses: dict[str, LastUse] = {}

    def seen(image_id: str | None, use: LastUse) -> None:
        if image_id is not None and (image_id not in uses or use.when > uses[image_id].when):
            uses[image_id] = use

    for image_id, use in record.uses.items():
        full = qualified_id(image_id)
        if full in resolve.ids:
            source = f"{RECORD_SOURCE}{use.source.removeprefix(RECORD_SOURCE)}"
            seen(full, LastUse(when=use.when, source=source))
    for sighting in sightings:
        seen(resolve(sighting.subject), LastUse(when=sighting.when, source=sighting.source))
    if record.floor is not None:
        floor = LastUse(
            when=record.floor,
            source=f"{RECORD_SOURCE}damaged ({record.problem}), all images counted as used "
            "when it was last written",
        )
        for image_id in resolve.ids:
            seen(image_id, floor)
    return uses
