"""Dangling-image cleanup that is safe to run unattended: plan, then delete exactly that plan.

The engine's own prune endpoint deletes whatever is dangling at the moment it runs, including
images that appeared after a dry run looked. Here the plan is computed once from one snapshot,
shown or executed as is, and each image is checked again just before its delete: an image that
gained a tag is kept, and one that gained a container is refused by the engine itself (deletes
never use force) and kept too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeVar

from dockops.core.cleanup.snapshot import VANISHING, ImageState, engine_state, settled
from dockops.core.images.listing import list_images, tags_of
from dockops.engine.errors import Missing
from dockops.errors import EngineRefused, EngineUnreachable, InvalidInput
from dockops.reference import parse_reference
from dockops.units import human_age, human_duration

if TYPE_CHECKING:
    from dockops.engine.api import Engine

_T = TypeVar("_T")
_R = TypeVar("_R")

# Why an image was kept; the human summary counts by these.
IN_USE = "in-use"
TOO_YOUNG = "too-young"
KEPT_LABEL = "kept-label"
HAS_CHILDREN = "has-children"
CHANGED = "changed"
GONE = "gone"


@dataclass(frozen=True)
class LabelRule:
    """`--keep-label K` (any value) or `--keep-label K=V` (that value)."""

    key: str
    value: str | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.key not in labels:
            return False
        return self.value is None or labels[self.key] == self.value

    def __str__(self) -> str:
        return self.key if self.value is None else f"{self.key}={self.value}"


def parse_label_rule(text: str) -> LabelRule:
    """Parse ``K`` or ``K=V``.

    Raises:
        InvalidInput: empty key, or whitespace in the key.
    """
    key, sep, value = text.partition("=")
    if not key or key != key.strip() or any(c.isspace() for c in key):
        raise InvalidInput(f"invalid --keep-label {text!r}: expected KEY or KEY=VALUE")
    return LabelRule(key=key, value=value if sep else None)


@dataclass(frozen=True)
class Removal:
    id: str
    size: int


@dataclass(frozen=True)
class Kept:
    id: str
    reason: str
    kind: str


@dataclass(frozen=True)
class Failure:
    id: str
    error: str


@dataclass(frozen=True)
class PrunePlan:
    remove: tuple[Removal, ...]
    kept: tuple[Kept, ...]


@dataclass(frozen=True)
class PruneResult:
    dry_run: bool
    removed: tuple[Removal, ...]
    kept: tuple[Kept, ...]
    reclaimed_bytes: int
    failed: tuple[Failure, ...] = ()
    duration_seconds: float = 0.0


@dataclass(frozen=True)
class DanglingImage:
    id: str
    created: datetime
    size: int
    containers: tuple[str, ...]


def list_dangling(engine: Engine) -> list[DanglingImage]:
    """Every dangling image with the containers (running or stopped) holding it, newest first.

    Raises:
        EngineRefused, EngineUnreachable: from the engine.
    """
    # One entry per image: an untagged image known by digest in two repositories is two rows
    # of `images`, and one image to remove.
    found: dict[str, DanglingImage] = {}
    for row in settled(lambda: list_images(engine, dangling=True)):
        found.setdefault(
            row.id,
            DanglingImage(id=row.id, created=row.created, size=row.size, containers=row.containers),
        )
    return list(found.values())


def plan_prune(
    images: Iterable[ImageState],
    *,
    now: datetime,
    older_than: float | None = None,
    keep_labels: Sequence[LabelRule] = (),
) -> PrunePlan:
    """Decide, from one snapshot, which dangling images go and why each other one stays.

    Args:
        images: every image of the engine (tagged ones are never candidates).
        now: the time ages are measured from.
        older_than: only images created more than this many seconds ago go; None: any age.
        keep_labels: images carrying any of these labels stay.

    Returns:
        The images to remove (oldest first) and the dangling images kept, each with a reason.
    """
    remove: list[Removal] = []
    kept: list[Kept] = []
    for image in sorted(images, key=lambda i: (i.created, i.id)):
        if image.tagged:
            continue
        if image.containers:
            holders = ", ".join(image.containers)
            kept.append(Kept(id=image.id, reason=f"in use by container {holders}", kind=IN_USE))
        elif image.has_children:
            kept.append(Kept(id=image.id, reason="has dependent child images", kind=HAS_CHILDREN))
        elif rule := next((r for r in keep_labels if r.matches(image.labels)), None):
            kept.append(Kept(id=image.id, reason=f"kept label {rule}", kind=KEPT_LABEL))
        elif older_than is not None and (now - image.created).total_seconds() <= older_than:
            age = human_age(image.created, now).removesuffix(" ago")
            reason = f"too young ({age} old, limit {human_duration(older_than)})"
            kept.append(Kept(id=image.id, reason=reason, kind=TOO_YOUNG))
        else:
            remove.append(Removal(id=image.id, size=image.size))
    return PrunePlan(remove=tuple(remove), kept=tuple(kept))


def prune_dangling(
    engine: Engine,
    *,
    older_than: float | None = None,
    keep_labels: Sequence[LabelRule] = (),
    dry_run: bool = False,
    workers: int = 4,
    now: datetime | None = None,
) -> PruneResult:
    """Plan the cleanup from one snapshot and, unless `dry_run`, delete exactly that plan.

    Args:
        engine: the engine.
        older_than: seconds; only images created before now minus this go.
        keep_labels: images with any of these labels stay.
        dry_run: return the plan as the result, delete nothing.
        workers: deletes running at once (the engine serialises part of each delete; a few in
            flight hide the round trips).
        now: the reference time (tests); default the current time.

    Returns:
        What was (or would be) removed, what was kept and why, what failed.

    Raises:
        EngineUnreachable: the engine could not be reached, at the start or mid-run.
        EngineRefused: the engine refused to list images.
    """
    started = time.monotonic()
    plan = plan_prune(
        engine_state(engine),
        now=now or datetime.now(timezone.utc),
        older_than=older_than,
        keep_labels=keep_labels,
    )
    if dry_run:
        return PruneResult(
            dry_run=True,
            removed=plan.remove,
            kept=plan.kept,
            reclaimed_bytes=sum(r.size for r in plan.remove),
            duration_seconds=time.monotonic() - started,
        )
    return execute_plan(engine, plan, workers=workers, started=started)


def execute_plan(
    engine: Engine, plan: PrunePlan, *, workers: int = 4, started: float | None = None
) -> PruneResult:
    """Delete exactly the images of `plan`, each checked again just before its delete.

    Args:
        engine: the engine.
        plan: from plan_prune.
        workers: deletes in flight at once; the outcome does not depend on it.
        started: monotonic start time to report the duration from (default: now).

    Returns:
        Removed images, the plan's kept images plus those kept at the re-check, and failures.

    Raises:
        EngineUnreachable: the engine went away mid-run; the message says how many deletes
            were done before that (a rerun plans again from what is left).
    """
    started = time.monotonic() if started is None else started
    outcomes, lost = each_until_lost(lambda r: _remove_one(engine, r), plan.remove, workers)
    removed = tuple(o for o in outcomes if isinstance(o, Removal))
    if lost is not None:
        raise EngineUnreachable(
            f"prune: {lost.message}; {len(removed)} of {len(plan.remove)} planned images were "
            "removed before that, run again to finish"
        ) from lost
    return PruneResult(
        dry_run=False,
        removed=removed,
        kept=plan.kept + tuple(o for o in outcomes if isinstance(o, Kept)),
        reclaimed_bytes=sum(r.size for r in removed),
        failed=tuple(o for o in outcomes if isinstance(o, Failure)),
        duration_seconds=time.monotonic() - started,
    )


def each_until_lost(
    work: Callable[[_T], _R], items: Sequence[_T], workers: int
) -> tuple[list[_R], EngineUnreachable | None]:
    """`work(item)` for every item, `workers` at once, in the items' order; once the engine is
    found gone, the items not begun are dropped (no more requests to an engine that is gone)
    and the loss is returned beside the results of those done, for the caller to count."""
    results: list[_R] = []
    lost: EngineUnreachable | None = None
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(work, item) for item in items]
        for future in futures:
            try:
                results.append(future.result())
            except CancelledError:
                continue
            except EngineUnreachable as exc:
                lost = lost or exc
                for pending in futures:
                    pending.cancel()
    return results, lost


def _remove_one(engine: Engine, planned: Removal) -> Removal | Kept | Failure:
    """Check one planned image again, then delete it without force and without its parents."""
    gone = Kept(id=planned.id, reason=GONE_REASON, kind=GONE)
    try:
        current = settled(lambda: engine.find_image(planned.id))
        if current is None:
            return gone
        if tags_of(current):
            tags = ", ".join(_familiar(tag) for tag in tags_of(current))
            return Kept(id=planned.id, reason=f"tagged since planning ({tags})", kind=CHANGED)
        # No force: the engine refuses an image any container uses, atomically with the
        # delete. noprune: parents that become dangling are not in the plan, so they stay.
        engine.remove_image(planned.id, force=False, noprune=True)
        return planned
    except Missing:
        return gone  # another process deleted it between the check and the delete
    except EngineRefused as exc:
        if any(words in exc.message for words in VANISHING) and went(engine, planned.id):
            # Two deletes of one image racing (two runs without a shared lock): the loser may
            # fail on the image or layer the winner released. The image is gone, which is what
            # this run wanted. Any other failure stays one, even when the image record went (a
            # layer the engine could not remove still holds the space).
            return gone
        return read_refusal(planned.id, exc.message)


def _familiar(tag: str) -> str:
    """A tag as docker prints it (Podman's docker.io/library/busybox:latest is busybox:latest)."""
    try:
        return str(parse_reference(tag).familiar())
    except InvalidInput:
        return tag


def went(engine: Engine, image_id: str) -> bool:
    """Whether the image is no longer there (False when the engine cannot say)."""
    try:
        return settled(lambda: engine.find_image(image_id)) is None
    except EngineRefused:
        return False


GONE_REASON = "gone before its turn (removed by another process)"


def read_refusal(image_id: str, text: str) -> Kept | Failure:
    """Read a refusal that is a reason to keep, not a failure. A 409 does not say which one
    (in use, or has children), so its text does."""
    # Another process deleted it first: the 20.10 daemon says "No such image" (a 404, caught
    # as Missing before this) when the image was gone before the delete began, "unrecognized
    # image ID" (a 500) when it went during it.
    if "No such image" in text or "unrecognized image ID" in text:
        return Kept(id=image_id, reason=GONE_REASON, kind=GONE)
    holder = None
    if "being used by" in text:  # 20.10: "... image is being used by stopped container 1a2b3c"
        holder = text.rsplit("container", 1)[-1].strip()
    elif "in use by a container" in text:  # Podman: "... image used by <ID>: image is in use ..."
        holder = text.partition("image used by ")[2].partition(":")[0].strip()[:12]
    if holder is not None:
        reason = f"in use by container {holder} (since planning)"
        return Kept(id=image_id, reason=reason, kind=IN_USE)
    if "dependent child images" in text:
        return Kept(id=image_id, reason="has dependent child images", kind=HAS_CHILDREN)
    return Failure(id=image_id, error=text)
