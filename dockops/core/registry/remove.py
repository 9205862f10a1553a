"""Deleting from a registry: one tag (by its digest), and retention over a repository.

registry:2 deletes manifests by digest only, and a digest delete removes every tag on that
digest (distribution#3828). So before deleting, the other tags sharing the digest are found:
`rm` refuses to take them along unless forced, and `prune` never deletes a digest that a kept
tag still points at. Deleted blobs stay on disk until `registry gc`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from dockops.core.registry.api import RegistryClient
from dockops.core.registry.browse import image_config, manifest, tags
from dockops.errors import EngineRefused, InvalidInput
from dockops.units import parse_timestamp

WORKERS = 8


@dataclass(frozen=True)
class RemoveResult:
    reference: str
    digest: str
    tags_removed: tuple[str, ...]  # every tag that pointed at the digest
    dry_run: bool


def _digests(api: RegistryClient, repository: str, names: list[str]) -> dict[str, str | None]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        found = pool.map(lambda tag: api.manifest_digest(repository, tag), names)
        return dict(zip(names, found, strict=True))


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


def remove_tag(
    api: RegistryClient, repository: str, tag: str, *, force: bool = False, dry_run: bool = False
) -> RemoveResult:
    """Delete repository:tag by its digest.

    Raises:
        InvalidInput: no such tag.
        EngineRefused: other tags share the digest (and not force), or deletes are disabled.
    """
    digest = api.manifest_digest(repository, tag)
    if digest is None:
        raise InvalidInput(f"{api.registry}: no tag {repository}:{tag}")
    others = [t for t in tags(api, repository) if t != tag]
    sharing = sorted(t for t, d in _digests(api, repository, others).items() if d == digest)
    if sharing and not force:
        raise EngineRefused(
            f"{repository}:{tag} is {digest}, which tags {', '.join(sharing)} also name: "
            "a delete by digest removes them all; --force to delete all of them"
        )
    if not dry_run:
        delete_digest(api, repository, digest)
    return RemoveResult(f"{repository}:{tag}", digest, tuple(sorted([tag, *sharing])), dry_run)


@dataclass(frozen=True)
class TagAge:
    tag: str
    digest: str
    created: str | None
    reason: str | None = None  # why kept


@dataclass(frozen=True)
class PruneResult:
    repository: str
    dry_run: bool
    removed: tuple[TagAge, ...]
    kept: tuple[TagAge, ...]
    deleted_digests: tuple[str, ...]


def _age(api: RegistryClient, repository: str, tag: str) -> TagAge:
    document, digest = manifest(api, repository, tag)
    created = image_config(api, repository, document).get("created")
    return TagAge(tag, digest, str(created) if created else None)


def plan_retention(
    ages: list[TagAge], *, keep: int | None, older_than: timedelta | None, now: datetime
) -> tuple[list[TagAge], list[TagAge]]:
    """Split tags into (removed, kept), pure: unit-tested.

    The newest `keep` tags are kept, and any tag newer than `older_than`; a tag without a
    created time is kept; a tag whose digest a kept tag shares is kept (deleting the digest
    would take the kept tag too).
    """
    dated = sorted(
        (a for a in ages if parse_timestamp(a.created or "")),
        key=lambda a: (parse_timestamp(a.created or ""), a.tag),
        reverse=True,
    )
    kept = [TagAge(a.tag, a.digest, a.created, "no created time") for a in ages if a not in dated]
    candidates = []
    for rank, age in enumerate(dated):
        created = parse_timestamp(age.created or "")
        assert created is not None
        if keep is not None and rank < keep:
            kept.append(TagAge(age.tag, age.digest, age.created, f"among the newest {keep}"))
        elif older_than is not None and created > now - older_than:
            kept.append(TagAge(age.tag, age.digest, age.created, "newer than --older-than"))
        else:
            candidates.append(age)
    held = {a.digest: a.tag for a in kept}
    removed = []
    for age in candidates:
        if age.digest in held:
            reason = f"shares its digest with kept tag {held[age.digest]}"
            kept.append(TagAge(age.tag, age.digest, age.created, reason))
        else:
            removed.append(age)
    return removed, sorted(kept, key=lambda a: a.tag)


def prune_repository(
    api: RegistryClient,
    repository: str,
    *,
    keep: int | None,
    older_than: timedelta | None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Retention: delete the tags beyond the newest `keep` and older than `older_than`.

    Raises:
        InvalidInput: neither keep nor older_than, or no such repository.
        EngineRefused: deletes are disabled.
    """
    if keep is None and older_than is None:
        raise InvalidInput("registry prune needs --keep N, --older-than DUR, or both")
    names = tags(api, repository)
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        ages = list(pool.map(lambda tag: _age(api, repository, tag), names))
    removed, kept = plan_retention(
        ages, keep=keep, older_than=older_than, now=now or datetime.now(timezone.utc)
    )
    digests = tuple(dict.fromkeys(a.digest for a in removed))
    if not dry_run:
        for digest in digests:
            delete_digest(api, repository, digest)
    return PruneResult(repository, dry_run, tuple(removed), tuple(kept), digests)
