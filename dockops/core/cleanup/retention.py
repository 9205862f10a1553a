"""Planning of prune-images: which tagged images leave a host, from one snapshot of its engine.

Pure: the snapshot comes in as plain data (the engine part reads it, the usage record and the
engine's events are folded into `EngineSnapshot.usage` by the caller), the plan goes out as
plain data, and prune-images carries out exactly this plan. Rules work on references (tags),
because that is what a user names; an image leaves only when every one of its tags is in the
plan, otherwise only the planned tags go (`docker rmi` of a tag untags, and the image stays).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase

from dockops.core.cleanup.dangling import LabelRule
from dockops.errors import InvalidInput
from dockops.reference import parse_reference
from dockops.units import human_age, human_duration, human_size, short_id

# Why a candidate tag was kept, strongest first: a tag kept by several rules reports the first.
IN_USE = "in-use"
KEPT_LABEL = "kept-label"
KEPT_GLOB = "keep"
KEEP_LAST = "keep-last"
RECENTLY_USED = "unused-for"
WITHIN_BUDGET = "max-disk"


@dataclass(frozen=True)
class TaggedImage:
    """One image as planning sees it. `tags` are familiar names (busybox:latest), as the user
    writes them and as globs match them; `size` is what deleting the image frees (its unique
    size), not what it shares with others."""

    id: str
    tags: tuple[str, ...]
    size: int
    created: datetime
    last_tagged: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # The engine keeps an image its children build on, whatever happens to its tags: removing
    # them frees nothing, so such an image is only ever untagged.
    has_children: bool = False


@dataclass(frozen=True)
class ContainerUse:
    """A container that exists (running or stopped): it pins its image, and its times are uses."""

    id: str
    image: str
    created: datetime
    started: datetime | None = None
    finished: datetime | None = None


@dataclass(frozen=True)
class LastUse:
    """When an image was last used, and what says so (shown beside every removal)."""

    when: datetime
    source: str


@dataclass(frozen=True)
class EngineSnapshot:
    """Everything planning reads, taken once. `usage` maps an image ID to the last use dockops
    knows of beyond the engine's own state (the usage record merged with the engine's events
    since the last run, each with its source), so a container removed between two runs still
    counts. `images_bytes` is the images' total as
    the engine reports it (None: the sum of the images' sizes)."""

    images: tuple[TaggedImage, ...]
    now: datetime
    containers: tuple[ContainerUse, ...] = ()
    usage: Mapping[str, LastUse] = field(default_factory=dict)
    images_bytes: int | None = None


@dataclass(frozen=True)
class RetentionRules:
    """prune-images' options. `max_disk` is bytes: a percentage is resolved by the caller
    against the engine's filesystem. `unused_for` is seconds."""

    references: tuple[str, ...] = ()
    keep_last: int | None = None
    unused_for: float | None = None
    max_disk: int | None = None
    keep_labels: tuple[LabelRule, ...] = ()
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.keep_last is not None and self.keep_last < 0:
            raise InvalidInput(f"invalid --keep-last {self.keep_last}: must be 0 or more")
        if self.max_disk is not None and self.max_disk < 0:
            raise InvalidInput(f"invalid --max-disk {self.max_disk}: must be 0 or more")


@dataclass(frozen=True)
class KeptTag:
    """A candidate reference the plan leaves in place, and the rule that keeps it."""

    reference: str
    image: str
    kind: str
    reason: str
    last_use: LastUse


@dataclass(frozen=True)
class Eviction:
    """One image the plan touches: `tags` are removed; `delete` says the image goes with them
    (every tag it has is in the plan), and `freed` what that gives back (0 for an untag)."""

    image: str
    tags: tuple[str, ...]
    delete: bool
    freed: int
    last_use: LastUse
    reason: str


@dataclass(frozen=True)
class Budget:
    """How far a --max-disk plan gets: the images' total before and after it, and what stays
    over the limit (`shortfall`, 0 when reached) with the bytes each keeping rule holds."""

    limit: int
    before: int
    after: int
    shortfall: int
    held: tuple[tuple[str, int], ...] = ()

    @property
    def reached(self) -> bool:
        return self.shortfall == 0


@dataclass(frozen=True)
class RetentionPlan:
    """What prune-images removes (least recently used first) and what it keeps and why."""

    remove: tuple[Eviction, ...]
    kept: tuple[KeptTag, ...]
    budget: Budget | None = None

    @property
    def freed(self) -> int:
        return sum(e.freed for e in self.remove)


def repository_of(tag: str) -> str:
    """The repository of a familiar reference (`registry:5000/app:1` is `registry:5000/app`);
    text that does not parse is cut at its last colon, never a reason to fail a plan."""
    try:
        return parse_reference(tag).repository
    except InvalidInput:
        head, sep, tail = tag.rpartition(":")
        return head if sep and "/" not in tail else tag


def matches(globs: tuple[str, ...], tag: str) -> bool:
    """A glob names a repository (`app`, `ci/*`) or a reference (`app:pr-*`); fnmatch's `*`
    crosses `/`, so `ci/*` is every repository under ci/. Podman stores a short name under
    localhost/ (`app:1` is localhost/app:1 there): a glob typed without it matches it too."""
    names = {tag, repository_of(tag)}
    names |= {name.removeprefix("localhost/") for name in names}
    return any(fnmatchcase(name, g) for name in names for g in globs)


def last_uses(snapshot: EngineSnapshot) -> dict[str, LastUse]:
    """Each image's last use: the newest of its creation, its last tag time (a pull, load,
    build or tag is a use, so a fresh build is never first to go), the create, start and
    finish times of its containers, and the usage record's entry."""
    uses = {i.id: LastUse(when=i.created, source="created") for i in snapshot.images}

    def seen(image: str, when: datetime | None, source: str) -> None:
        if image in uses and when is not None and when > uses[image].when:
            uses[image] = LastUse(when=when, source=source)

    for image in snapshot.images:
        seen(image.id, image.last_tagged, "tagged")
    for c in snapshot.containers:
        name = short_id(c.id)
        seen(c.image, c.created, f"container {name} created")
        seen(c.image, c.started, f"container {name} started")
        seen(c.image, c.finished, f"container {name} finished")
    for image_id, use in snapshot.usage.items():
        seen(image_id, use.when, use.source)
    return uses


def plan_retention(snapshot: EngineSnapshot, rules: RetentionRules) -> RetentionPlan:
    """Decide, from one snapshot, which tags and images prune-images removes.

    Candidates are the tags --reference matches (every tag without it). A candidate is kept
    by, in this order: a container using its image, a --keep-label on its image, a --keep
    glob, --keep-last (per repository, the tags of the N most recently used images among the
    candidates: tags of one image share its last use, so they rank together), --unused-for,
    and, under --max-disk, a budget already met. An image leaves when all its tags are planned
    and nothing else holds it; one with a tag outside the plan is only untagged.

    Returns:
        The removals, least recently used first, each with its last use and why; every
        candidate kept, with its rule; under --max-disk, how far the plan gets.
    """
    uses = last_uses(snapshot)
    holders: dict[str, list[str]] = defaultdict(list)
    for c in snapshot.containers:
        holders[c.image].append(short_id(c.id))
    by_id = {i.id: i for i in snapshot.images}

    candidates = [
        (tag, image)
        for image in snapshot.images
        for tag in image.tags
        if not rules.references or matches(rules.references, tag)
    ]
    ranks = _recency_ranks(candidates, uses)

    kept: list[KeptTag] = []
    planned: dict[str, list[str]] = defaultdict(list)
    for tag, image in candidates:
        why = _kept_by(tag, image, rules, holders, ranks, uses[image.id], snapshot.now)
        if why is None:
            planned[image.id].append(tag)
        else:
            kind, reason = why
            kept.append(
                KeptTag(
                    reference=tag, image=image.id, kind=kind, reason=reason, last_use=uses[image.id]
                )
            )

    evictions = [
        _eviction(by_id[image_id], tuple(tags), uses[image_id], rules, ranks)
        for image_id, tags in planned.items()
    ]
    evictions.sort(key=lambda e: (e.last_use.when, e.image))
    if rules.max_disk is None:
        return RetentionPlan(remove=tuple(evictions), kept=tuple(kept))
    return _within_budget(snapshot, rules.max_disk, evictions, kept)


def _recency_ranks(
    candidates: list[tuple[str, TaggedImage]], uses: Mapping[str, LastUse]
) -> dict[tuple[str, str], int]:
    """(repository, image ID) -> 1 for the repository's most recently used image, 2 for the
    next...; ties by ID, so a plan does not depend on the order the engine listed images in."""
    images_of: dict[str, set[str]] = defaultdict(set)
    for tag, image in candidates:
        images_of[repository_of(tag)].add(image.id)
    ranks: dict[tuple[str, str], int] = {}
    for repository, ids in images_of.items():
        newest_first = sorted(ids, key=lambda i: (-uses[i].when.timestamp(), i))
        for rank, image_id in enumerate(newest_first, start=1):
            ranks[(repository, image_id)] = rank
    return ranks


def _kept_by(
    tag: str,
    image: TaggedImage,
    rules: RetentionRules,
    holders: Mapping[str, list[str]],
    ranks: Mapping[tuple[str, str], int],
    use: LastUse,
    now: datetime,
) -> tuple[str, str] | None:
    """The rule that keeps one candidate tag, as (kind, reason); None: it may go."""
    if holders.get(image.id):
        return IN_USE, f"in use by container {', '.join(holders[image.id])}"
    if rule := next((r for r in rules.keep_labels if r.matches(image.labels)), None):
        return KEPT_LABEL, f"kept label {rule}"
    if glob := next((g for g in rules.keep if matches((g,), tag)), None):
        return KEPT_GLOB, f"kept by --keep {glob}"
    repository = repository_of(tag)
    rank = ranks[(repository, image.id)]
    if rules.keep_last is not None and rank <= rules.keep_last:
        return (
            KEEP_LAST,
            f"{_ordinal(rank)} most recently used of {repository} (--keep-last {rules.keep_last})",
        )
    idle = (now - use.when).total_seconds()
    if rules.unused_for is not None and idle < rules.unused_for:
        limit = human_duration(rules.unused_for)
        return RECENTLY_USED, f"used {human_age(use.when, now)} (--unused-for {limit})"
    return None


def _eviction(
    image: TaggedImage,
    tags: tuple[str, ...],
    use: LastUse,
    rules: RetentionRules,
    ranks: Mapping[tuple[str, str], int],
) -> Eviction:
    """One image's planned tags, deleted with them when nothing else names or holds it."""
    delete = set(tags) == set(image.tags) and not image.has_children
    why: list[str] = []
    if rules.keep_last is not None:
        worst = max(ranks[(repository_of(t), image.id)] for t in tags)
        why.append(f"{_ordinal(worst)} most recently used, beyond --keep-last {rules.keep_last}")
    if rules.unused_for is not None:
        why.append(f"unused for longer than {human_duration(rules.unused_for)}")
    if not why:
        why.append(
            "matches --reference" if rules.references else "every tagged image is a candidate"
        )
    if not delete:
        others = sorted(set(image.tags) - set(tags))
        why.append(
            f"untagged only: still tagged {', '.join(others)}"
            if others
            else "untagged only: child images build on it"
        )
    return Eviction(
        image=image.id,
        tags=tags,
        delete=delete,
        freed=image.size if delete else 0,
        last_use=use,
        reason="; ".join(why),
    )


def _within_budget(
    snapshot: EngineSnapshot, limit: int, evictions: list[Eviction], kept: list[KeptTag]
) -> RetentionPlan:
    """The shortest least-recently-used-first run of deletes that brings the images' total
    within `limit`. Untags free nothing, so they are never part of it; a run that cannot
    reach the limit takes every delete the rules allow and says what is left over."""
    before = (
        snapshot.images_bytes
        if snapshot.images_bytes is not None
        else sum(i.size for i in snapshot.images)
    )
    total = before
    chosen: list[Eviction] = []
    deletes = [e for e in evictions if e.delete]
    for eviction in deletes:
        if total <= limit:
            break
        total -= eviction.freed
        reason = f"{eviction.reason}; least recently used, needed to get within {human_size(limit)}"
        chosen.append(
            Eviction(
                image=eviction.image,
                tags=eviction.tags,
                delete=True,
                freed=eviction.freed,
                last_use=eviction.last_use,
                reason=reason,
            )
        )
    planned = {e.image for e in chosen}
    for eviction in evictions:
        if eviction.image in planned:
            continue
        reason = (
            f"within --max-disk {human_size(limit)} without it"
            if eviction.delete
            else "untagging frees nothing toward --max-disk"
        )
        kept.extend(
            KeptTag(
                reference=tag,
                image=eviction.image,
                kind=WITHIN_BUDGET,
                reason=reason,
                last_use=eviction.last_use,
            )
            for tag in eviction.tags
        )
    shortfall = max(0, total - limit)
    return RetentionPlan(
        remove=tuple(chosen),
        kept=tuple(kept),
        budget=Budget(
            limit=limit,
            before=before,
            after=total,
            shortfall=shortfall,
            held=_held(snapshot, planned, kept) if shortfall else (),
        ),
    )


def _held(
    snapshot: EngineSnapshot, planned: set[str], kept: list[KeptTag]
) -> tuple[tuple[str, int], ...]:
    """Bytes of the images that stay, by the rule that keeps each (its first kept tag's);
    images outside the candidates count as "out-of-scope"."""
    kind_of: dict[str, str] = {}
    for k in kept:
        kind_of.setdefault(k.image, k.kind)
    held: dict[str, int] = defaultdict(int)
    for image in snapshot.images:
        if image.id not in planned:
            held[kind_of.get(image.id, "out-of-scope")] += image.size
    return tuple(sorted(held.items(), key=lambda kv: (-kv[1], kv[0])))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
