"""Deleting from a registry: one tag (by its digest), and retention over a repository.

registry:2 deletes manifests by digest only, and a digest delete removes every tag on that
digest (distribution#3828). So before deleting, the other tags sharing the digest are found:
`rm` refuses to take them along unless forced, and `prune` never deletes a digest that a kept
tag still points at. An index (multi-arch image) and the images it references go as one unit:
an image that a kept index references is never deleted, not even with --force (the index would
name a manifest that is gone), and deleting an index deletes its images that nothing else holds
after it (once it is gone they are unreachable, and `registry gc` keeps untagged manifests).
Deleted blobs stay on disk until `registry gc`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from dockops.core.registry.browse import tags
from dockops.core.registry.client import RegistryClient
from dockops.core.registry.graph import Tagged, tagged
from dockops.errors import EngineRefused, InvalidInput
from dockops.units import parse_timestamp


@dataclass(frozen=True)
class RemoveResult:
    reference: str
    digest: str
    tags_removed: tuple[str, ...]  # every tag that pointed at the digest
    # For an index: the manifests it references that no remaining tag holds, deleted after it.
    children_removed: tuple[str, ...]
    dry_run: bool


def delete_digest(api: RegistryClient, repository: str, digest: str) -> None:
    """DELETE a manifest by digest (202).

    Raises:
        EngineRefused: deletes are disabled on the registry (405 UNSUPPORTED), or it refused.
    """
    response = api.request("DELETE", f"/v2/{repository}/manifests/{digest}", allow=(404, 405))
    if response.status_code == 405:
        raise EngineRefused(
            f"{api.registry}: deletes are disabled on this registry "
            "(storage.delete.enabled is off; `dockops registry up` turns it on)"
        )
    if response.status_code == 404:
        raise InvalidInput(f"{api.registry}: no manifest {repository}@{digest}")


def _unheld(children: Iterable[str], staying: Iterable[Tagged]) -> tuple[str, ...]:
    """The children that no staying tag names or references."""
    held = {c for t in staying for c in (t.digest, *t.children)}
    return tuple(c for c in children if c not in held)


def remove_tag(
    api: RegistryClient, repository: str, tag: str, *, force: bool = False, dry_run: bool = False
) -> RemoveResult:
    """Delete repository:tag by its digest; for an index, its unheld images after it.

    Raises:
        InvalidInput: no such tag.
        EngineRefused: other tags share the digest (and not force), an index that stays
            references it, or deletes are disabled.
    """
    names = tags(api, repository)
    if tag not in names:
        raise InvalidInput(f"{api.registry}: no tag {repository}:{tag}")
    graph = tagged(api, repository, names)
    digest = graph[tag].digest
    sharing = sorted(t for t in names if t != tag and graph[t].digest == digest)
    if sharing and not force:
        raise EngineRefused(
            f"{repository}:{tag} is {digest}, which tags {', '.join(sharing)} also name: "
            "a delete by digest removes them all; --force to delete all of them"
        )
    staying = [t for t in graph.values() if t.digest != digest]
    indexes = sorted(f"{repository}:{t.tag}" for t in staying if digest in t.children)
    if indexes:
        raise EngineRefused(
            f"{repository}:{tag} is {digest}, an image that the index {', '.join(indexes)} "
            "references: deleting it would break that index; delete the index first"
        )
    children = _unheld(graph[tag].children, staying)
    if not dry_run:
        for each in (digest, *children):  # the index first: never an index without its images
            delete_digest(api, repository, each)
    return RemoveResult(
        reference=f"{repository}:{tag}",
        digest=digest,
        tags_removed=tuple(sorted([tag, *sharing])),
        children_removed=children,
        dry_run=dry_run,
    )


@dataclass(frozen=True)
class TagAge:
    tag: str
    digest: str
    created: str | None  # an index's: its newest image's
    reason: str | None = None  # why kept
    children: tuple[str, ...] = ()  # for an index: the manifests it references


@dataclass(frozen=True)
class RetentionResult:
    repository: str
    dry_run: bool
    removed: tuple[TagAge, ...]
    kept: tuple[TagAge, ...]
    deleted_digests: tuple[str, ...]  # the removed tags' digests, indexes first
    # The images of deleted indexes that no kept tag names or references, deleted after them.
    deleted_children: tuple[str, ...]


def plan_retention(
    ages: list[TagAge], *, keep: int | None, older_than: timedelta | None, now: datetime
) -> tuple[list[TagAge], list[TagAge]]:
    """Split tags into (removed, kept), pure: unit-tested.

    The newest `keep` tags are kept, and any tag newer than `older_than`; a tag without a
    created time is kept; a tag whose digest a kept tag shares is kept (deleting the digest
    would take the kept tag too), and so is a tag naming an image that a kept index references.
    An index is one tag here, however many images it has.
    """
    dated = sorted(
        (a for a in ages if parse_timestamp(a.created or "")),
        key=lambda a: (parse_timestamp(a.created or ""), a.tag),
        reverse=True,
    )
    kept = [replace(a, reason="no created time") for a in ages if a not in dated]
    candidates = []
    for rank, age in enumerate(dated):
        created = parse_timestamp(age.created or "")
        assert created is not None
        if keep is not None and rank < keep:
            kept.append(replace(age, reason=f"among the newest {keep}"))
        elif older_than is not None and created > now - older_than:
            kept.append(replace(age, reason="newer than --older-than"))
        else:
            candidates.append(age)
    held = {a.digest: a.tag for a in kept}
    within = {child: a.tag for a in kept for child in a.children}
    removed = []
    for age in candidates:
        if age.digest in held:
            kept.append(replace(age, reason=f"shares its digest with kept tag {held[age.digest]}"))
        elif age.digest in within:
            kept.append(replace(age, reason=f"an image of kept index {within[age.digest]}"))
        else:
            removed.append(age)
    return removed, sorted(kept, key=lambda a: a.tag)


def plan_deletes(
    removed: list[TagAge], kept: list[TagAge]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(digests, children) to delete, in order, pure: the removed tags' digests with indexes
    before the images they reference (an index with more references first: an index it lists
    has fewer), then the images of deleted indexes that no kept tag names or references. A
    failure midway then leaves unreachable images, never an index without its images."""
    units = sorted(removed, key=lambda a: -len(a.children))
    digests = tuple(dict.fromkeys(a.digest for a in units))
    staying = [Tagged(tag=a.tag, digest=a.digest, children=a.children) for a in kept]
    children = _unheld(dict.fromkeys(c for a in units for c in a.children), staying)
    return digests, tuple(c for c in children if c not in digests)


def prune_repository(
    api: RegistryClient,
    repository: str,
    *,
    keep: int | None,
    older_than: timedelta | None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> RetentionResult:
    """Retention: delete the tags beyond the newest `keep` and older than `older_than`.

    Raises:
        InvalidInput: neither keep nor older_than, or no such repository.
        EngineRefused: deletes are disabled.
    """
    if keep is None and older_than is None:
        raise InvalidInput("registry prune needs --keep N, --older-than DUR, or both")
    names = tags(api, repository)
    ages = [
        TagAge(tag=t.tag, digest=t.digest, created=t.created, children=t.children)
        for t in tagged(api, repository, names, created=True).values()
    ]
    removed, kept = plan_retention(
        ages, keep=keep, older_than=older_than, now=now or datetime.now(timezone.utc)
    )
    digests, children = plan_deletes(removed, kept)
    if not dry_run:
        for digest in (*digests, *children):
            delete_digest(api, repository, digest)
    return RetentionResult(
        repository=repository,
        dry_run=dry_run,
        removed=tuple(removed),
        kept=tuple(kept),
        deleted_digests=digests,
        deleted_children=children,
    )
