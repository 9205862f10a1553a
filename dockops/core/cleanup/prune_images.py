"""prune-images: plan from one reading of the engine, then carry out exactly that plan.

Each planned image is read again just before it is touched: one that gained a tag, lost one of
the tags that were to stay, or went, is kept as it is. Nothing is forced: the engine refuses,
atomically with the delete, an image a container uses, and so keeps one that gained a
container since planning. An image leaves by its ID once every other planned tag is gone: the
engine then deletes it only while it has that one reference left and no container, which is
what was planned; removing a tag by name would untag an image a container holds on Podman.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dockops.core.cleanup.dangling import (
    CHANGED,
    GONE,
    GONE_REASON,
    IN_USE,
    Failure,
    each_until_lost,
    read_refusal,
    went,
)
from dockops.core.cleanup.limits import DiskLimit
from dockops.core.cleanup.retention import (
    Budget,
    EngineSnapshot,
    Eviction,
    KeptTag,
    LastUse,
    RetentionPlan,
    RetentionRules,
    last_uses,
    plan_retention,
)
from dockops.core.cleanup.snapshot import VANISHING, settled
from dockops.core.cleanup.tagged import read_tagged
from dockops.core.cleanup.usage import (
    UsageRecord,
    default_record_path,
    engine_sightings,
    merge_usage,
    read_record,
    write_record,
)
from dockops.core.images.listing import holders_by_image, tags_of
from dockops.core.images.remove_podman import UNKNOWN_TAG
from dockops.engine.errors import Missing
from dockops.errors import EngineRefused, EngineUnreachable
from dockops.reference import familiar_name

if TYPE_CHECKING:
    from dockops.engine.api import Engine


@dataclass(frozen=True)
class ImagesPruneResult:
    """What prune-images removed (or would), kept and why, and could not do. `removed` holds
    the evictions carried out: `delete` true for an image that went, false for tags that went
    from an image that stays."""

    dry_run: bool
    removed: tuple[Eviction, ...]
    kept: tuple[KeptTag, ...]
    reclaimed_bytes: int
    budget: Budget | None = None
    failed: tuple[Failure, ...] = ()
    duration_seconds: float = 0.0
    usage_record: str = ""


def plan_images(
    engine: Engine,
    rules: RetentionRules,
    *,
    disk_limit: DiskLimit | None = None,
    record: UsageRecord | None = None,
    now: datetime | None = None,
) -> tuple[RetentionPlan, EngineSnapshot]:
    """Read the engine once, fold in the usage record and the engine's events since it, and
    plan from that.

    Args:
        engine: the engine.
        rules: the options; `max_disk` is replaced by `disk_limit` resolved on the engine.
        disk_limit: --max-disk as given (a percentage is of the engine's filesystem).
        record: the usage record as read (None: no record, and no events).
        now: the reference time, and the end of the events read (default: the current time).

    Raises:
        InvalidInput: a --max-disk percentage on an engine whose filesystem is not here.
        EngineRefused, EngineUnreachable: from the engine.
    """
    now = now or datetime.now(timezone.utc)
    percent = disk_limit is not None and disk_limit.percent is not None
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The events while the images are read: the engine answers both at once.
        events = (
            pool.submit(engine_sightings, engine, record.events_until, now)
            if record is not None
            else None
        )
        tagged = read_tagged(engine, rules.references, measure_filesystem=percent)
        sightings = events.result() if events is not None else []
    if disk_limit is not None:
        rules = replace(rules, max_disk=disk_limit.bytes_on(tagged.filesystem_bytes))
    usage: Mapping[str, LastUse] = {}
    if record is not None:
        usage = merge_usage(record, sightings, tagged.images)
    snapshot = EngineSnapshot(
        images=tagged.images,
        now=now,
        containers=tagged.containers,
        usage=usage,
        images_bytes=tagged.images_bytes,
    )
    return plan_retention(snapshot, rules), snapshot


def dry_run_result(plan: RetentionPlan, started: float, record: str = "") -> ImagesPruneResult:
    return ImagesPruneResult(
        dry_run=True,
        usage_record=record,
        removed=plan.remove,
        kept=plan.kept,
        reclaimed_bytes=plan.freed,
        budget=plan.budget,
        duration_seconds=time.monotonic() - started,
    )


def execute_plan(
    engine: Engine, plan: RetentionPlan, *, workers: int = 4, started: float | None = None
) -> ImagesPruneResult:
    """Carry out exactly the evictions of `plan`, each image checked again just before.

    Args:
        engine: the engine.
        plan: from plan_images.
        workers: images worked on at once (the tags of one image go in order, by one worker).
        started: monotonic start time to report the duration from (default: now).

    Raises:
        EngineUnreachable: the engine went away mid-run; the message says how many evictions
            were done before that (a rerun plans again from what is left).
    """
    started = time.monotonic() if started is None else started
    podman = engine.is_podman
    each, lost = each_until_lost(lambda e: _evict(engine, e, podman), plan.remove, workers)
    outcomes = [outcome for outcomes_of_one in each for outcome in outcomes_of_one]
    done = tuple(o for o in outcomes if isinstance(o, Eviction))
    if lost is not None:
        raise EngineUnreachable(
            f"prune-images: {lost.message}; {len(done)} of {len(plan.remove)} planned removals "
            "were done before that, run again to finish"
        ) from lost
    kept = list(plan.kept) + [o for o in outcomes if isinstance(o, KeptTag)]
    return ImagesPruneResult(
        dry_run=False,
        removed=done,
        kept=tuple(kept),
        reclaimed_bytes=sum(e.freed for e in done),
        budget=plan.budget,
        failed=tuple(o for o in outcomes if isinstance(o, Failure)),
        duration_seconds=time.monotonic() - started,
    )


def _kept(eviction: Eviction, kind: str, reason: str, exclude: Sequence[str] = ()) -> list[KeptTag]:
    return [
        KeptTag(
            reference=tag,
            image=eviction.image,
            kind=kind,
            reason=reason,
            last_use=eviction.last_use,
        )
        for tag in eviction.tags
        if tag not in exclude
    ]


def _evict(engine: Engine, eviction: Eviction, podman: bool) -> list[Eviction | KeptTag | Failure]:
    """One planned eviction, after checking the image is still as planned. What was done is
    what is reported: when the engine refuses the image's delete after its other planned tags
    went (a container created in the instant between the check and the delete), those tags are
    reported untagged and the rest kept, with the engine's reason."""
    done: list[str] = []
    try:
        return _carry_out(engine, eviction, podman, done)
    except Missing:
        return _partly(eviction, done, _kept(eviction, GONE, GONE_REASON, done))
    except EngineRefused as exc:
        if any(words in exc.message for words in VANISHING) and went(engine, eviction.image):
            return _partly(eviction, done, _kept(eviction, GONE, GONE_REASON, done))
        if podman and exc.message.endswith(UNKNOWN_TAG):
            # another run untagged it first: Docker's 404 for the same race
            return _partly(eviction, done, _kept(eviction, GONE, GONE_REASON, done))
        refusal = read_refusal(eviction.image, exc.message)
        if isinstance(refusal, Failure):
            return _partly(eviction, done, [refusal])
        return _partly(eviction, done, _kept(eviction, refusal.kind, refusal.reason, done))


def _carry_out(
    engine: Engine, eviction: Eviction, podman: bool, done: list[str]
) -> list[Eviction | KeptTag | Failure]:
    current = settled(lambda: engine.find_image(eviction.image))
    if current is None:
        return [*_kept(eviction, GONE, GONE_REASON)]
    stored = {familiar_name(t): t for t in tags_of(current)}
    planned = set(eviction.tags)
    others = sorted(set(stored) - planned)
    if eviction.delete and others:
        return [*_kept(eviction, CHANGED, f"tagged since planning ({', '.join(others)})")]
    if not eviction.delete and not others:
        # The tags that were to stay went: removing the planned ones now deletes the image.
        return [*_kept(eviction, CHANGED, "its other tags were removed since planning")]
    missing = sorted(planned - set(stored))
    if missing:
        return [*_kept(eviction, CHANGED, f"untagged since planning ({', '.join(missing)})")]
    if eviction.delete and len(stored) > 1 and _holders(engine, eviction.image):
        return [*_kept(eviction, IN_USE, "in use by a container created since planning")]
    for tag in eviction.tags[:-1] if eviction.delete else eviction.tags:
        _untag(engine, eviction.image, stored[tag], podman)
        done.append(tag)
    if eviction.delete:
        # By ID, not force: refused while a container uses it, atomically with the delete.
        engine.remove_image(eviction.image, force=False, noprune=True)
    return [eviction]


def _partly(
    eviction: Eviction, done: list[str], rest: list[KeptTag] | list[Failure]
) -> list[Eviction | KeptTag | Failure]:
    """The tags already removed when the eviction stopped, as an untag, and then the rest."""
    if not done:
        return [*rest]
    untagged = replace(
        eviction,
        tags=tuple(done),
        delete=False,
        freed=0,
        reason=f"{eviction.reason}; only untagged: the engine kept the image",
    )
    return [untagged, *rest]


def _untag(engine: Engine, image_id: str, name: str, podman: bool) -> None:
    """Remove one name of an image that keeps another. Docker's DELETE of a name only untags
    while the image has other references; Podman's own untag never deletes."""
    if podman:
        repository, _, tag = name.rpartition(":")
        engine.untag(image_id, repository, tag)
    else:
        engine.remove_image(name, force=False, noprune=True)


def _holders(engine: Engine, image_id: str) -> bool:
    """Whether any container (running or stopped) uses the image now."""
    return bool(holders_by_image(engine.containers(all=True)).get(image_id))


def prune_images(
    engine: Engine,
    rules: RetentionRules,
    *,
    disk_limit: DiskLimit | None = None,
    record_path: Path | None = None,
    dry_run: bool = False,
    workers: int = 4,
    now: datetime | None = None,
) -> ImagesPruneResult:
    """Plan from one reading of the engine and, unless `dry_run`, carry out exactly that plan.

    The usage record (`record_path`, default usage_record.default_record_path) is read, and,
    unless `dry_run`, written again before the first removal: the last use of every image that
    stays, and where the next run's events start. A record that cannot be written stops the run
    before anything is removed.

    Raises:
        InvalidInput: a --max-disk percentage on an engine whose filesystem is not here; a
            usage record that cannot be read or written.
        EngineUnreachable: the engine could not be reached, at the start or mid-run.
        EngineRefused: the engine refused to list its images or containers.
    """
    started = time.monotonic()
    now = now or datetime.now(timezone.utc)
    path = record_path or default_record_path(engine.address)
    record = read_record(path, now)
    plan, snapshot = plan_images(engine, rules, disk_limit=disk_limit, record=record, now=now)
    state = _record_state(record)
    if dry_run:
        return dry_run_result(plan, started, state)
    leaving = {e.image for e in plan.remove if e.delete}
    write_record(
        path,
        last_uses(snapshot),
        (i.id for i in snapshot.images if i.id not in leaving),
        now,
        engine=engine.address,
    )
    return replace(execute_plan(engine, plan, workers=workers, started=started), usage_record=state)


def _record_state(record: UsageRecord) -> str:
    """What the report says of the record: its path, and whether it was read, missing (a
    first run: the engine's events of the last week stand in) or damaged (rebuilt)."""
    if record.state == "damaged":
        return (
            f"{record.path}: damaged ({record.problem}), rebuilt; every image counted as used "
            "when it was last written"
        )
    return f"{record.path}: {record.state}"
