"""rmi: the engine's own removal semantics, made readable.

What the engine does (moby daemon/images/image_delete.go, seen on 20.10):
- by tag, image used by a container (running or stopped): 409 "(must force)"; with force the
  tag goes; a running container keeps the image alive, untagged (dangling); a stopped one
  does not, and the image is deleted under it.
- by ID, image used by a running container: 409 "(cannot be forced)", even with force; by a
  stopped one: 409 "(must be forced)", and force deletes it.
- by ID, image with several tags: 409 "(must be forced)"; force removes every tag and the image.
- by tag, when other tags remain: only that tag goes, no conflict.
- an image with dependent child images: 409 "(cannot be forced)" by ID; by tag only the tag
  goes and the image stays as the children's parent.
- removing a tag also removes the image's digests (RepoDigests) of the same repository when no
  other tag of that repository remains; the image is deleted only when no name is left.

So --with-containers first works out from the image's names whether the engine will really
delete it (will_stay): containers of an image that only loses a tag are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.engine.errors import Conflict, Missing
from dockops.errors import DockopsError, EngineRefused, InvalidInput, PartialFailure
from dockops.reference import parse_reference
from dockops.units import short_id

if TYPE_CHECKING:
    from dockops.engine.api import Engine

DELETED, UNTAGGED, REFUSED, MISSING = "deleted", "untagged", "refused", "missing"


@dataclass(frozen=True)
class RmiOutcome:
    """What happened to one reference.

    `outcome` is deleted, untagged (the image stays: other tags, a running container or child
    images hold it), refused (nothing changed; `flag` names what would do it, when a flag can)
    or missing (no such image). `containers` are the containers holding the image afterwards
    (for a refusal: those in the way); `removed_containers` those --with-containers removed
    (none when the image stays anyway: removing them would gain nothing).
    """

    reference: str
    outcome: str
    image_id: str | None
    message: str
    untagged: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    dangling: bool = False
    containers: tuple[str, ...] = ()
    removed_containers: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    flag: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (DELETED, UNTAGGED)


@dataclass(frozen=True)
class _Holder:
    id: str
    name: str
    running: bool


def _holders(engine: Engine, image_id: str) -> list[_Holder]:
    listed = engine.containers(all=True)
    return sorted(
        (
            _Holder(
                id=str(c["Id"]),
                name=((c.get("Names") or [c["Id"][:12]])[0]).lstrip("/"),
                running=c.get("State") in ("running", "paused", "restarting"),
            )
            for c in listed
            if c.get("ImageID") == image_id
        ),
        key=lambda h: h.name,
    )


def _children(engine: Engine, image_id: str) -> tuple[str, ...]:
    listed = engine.images(all=True)
    return tuple(
        sorted(
            next(iter(i.get("RepoTags") or []), None) or short_id(i["Id"])
            for i in listed
            if i.get("ParentId") == image_id
        )
    )


def _is_id(reference: str, image: dict[str, Any]) -> bool:
    """Was the image named by (a prefix of) its ID rather than by one of its names?"""
    bare = reference.removeprefix("sha256:")
    names = set(image.get("RepoTags") or ()) | set(image.get("RepoDigests") or ())
    named = reference in names or f"{reference}:latest" in names
    return not named and str(image["Id"]).removeprefix("sha256:").startswith(bare)


def _familiar(reference: str) -> str:
    """The reference as the engine writes it in RepoTags and RepoDigests (docker.io and
    library/ dropped, :latest added)."""
    ref = parse_reference(reference).familiar()
    if ref.digest:
        return f"{ref.repository}@{ref.digest}"
    return f"{ref.repository}:{ref.tag or 'latest'}"


def _repository(name: str) -> str:
    """The repository of a RepoTags or RepoDigests entry."""
    if "@" in name:
        return name.partition("@")[0]
    head, colon, _ = name.rpartition(":")
    return head if colon and "/" not in name[len(head) :] else name


def _single_reference(names: list[str]) -> bool:
    """The engine's isSingleReference: at most one tag, and every name in one repository. By ID,
    such an image is deleted without force; one with more names needs force."""
    if len(names) <= 1:
        return len(names) == 1
    tags = [n for n in names if "@" not in n]
    return len(tags) <= 1 and len({_repository(n) for n in names}) == 1


def names_left(reference: str, image: dict[str, Any]) -> tuple[str, ...]:
    """The names (tags, then digests) the image keeps once the engine has removed `reference`,
    a tag or digest of it (pure: the engine's rule above)."""
    gone = _familiar(reference)
    tags = [t for t in image.get("RepoTags") or () if t != gone]
    digests = [d for d in image.get("RepoDigests") or () if d != gone]
    if "@" not in gone and not any(_repository(t) == _repository(gone) for t in tags):
        digests = [d for d in digests if _repository(d) != _repository(gone)]
    return (*tags, *digests)


def will_stay(reference: str, image: dict[str, Any], by_id: bool, force: bool) -> str | None:
    """Why removing `reference` leaves the image in place, or None when the engine deletes it
    (as far as its names tell: child images are looked up by the caller).

    By ID: several names without force is a refusal (nothing is removed); with force, or a
    single name, the image goes. By name: it goes when no name is left.
    """
    names = [*(image.get("RepoTags") or ()), *(image.get("RepoDigests") or ())]
    if by_id:
        if not force and names and not _single_reference(names):
            return f"it has several names ({', '.join(names)}), which only --force removes by ID"
        return None
    left = names_left(reference, image)
    if not left:
        return None
    # Tags come first: a lone digest says so.
    return f"other {'digests' if '@' in left[0] else 'tags'} remain: {', '.join(left)}"


def _parent_of(engine: Engine, image_id: str) -> str | None:
    """Why the image outlives its last tag: child images (None when it has none)."""
    children = _children(engine, image_id)
    return f"it is the parent of {', '.join(children)}" if children else None


def _names(holders: list[_Holder]) -> tuple[str, ...]:
    return tuple(h.name for h in holders)


def _refusal(
    reference: str,
    image_id: str,
    by_id: bool,
    holders: list[_Holder],
    children: tuple[str, ...],
    engine_text: str,
) -> RmiOutcome:
    running = [h for h in holders if h.running]
    stopped = [h for h in holders if not h.running]
    names = ", ".join(_names(holders))
    if "child images" in engine_text:
        message = (
            f"{reference} is the parent of {', '.join(children) or 'other images'}: "
            "remove those first (no flag forces this)"
        )
        flag = None
    elif by_id and running:
        message = (
            f"{reference} is used by running container {names}: --with-containers --force "
            "removes the container(s) and the image"
        )
        flag = "--with-containers --force"
    elif holders and not by_id and running:
        message = (
            f"{reference} is used by running container {names}: --force removes the tag only "
            "(the image stays, dangling); --with-containers --force removes the container(s) "
            "and the image"
        )
        flag = "--force"
    elif stopped and "multiple repositories" in engine_text:
        message = (
            f"{reference} is an ID with several tags, used by stopped container {names}: "
            "--force removes every tag and the image and leaves them without it; "
            "--with-containers --force removes them too"
        )
        flag = "--force"
    elif stopped:
        message = (
            f"{reference} is used by stopped container {names}: --with-containers removes "
            "them and the image; --force deletes the image and leaves them without it"
        )
        flag = "--force"
    elif "multiple repositories" in engine_text:
        message = f"{reference} is an ID with several tags: --force removes every tag and the image"
        flag = "--force"
    else:
        message = f"{reference}: {engine_text}"
        flag = None
    return RmiOutcome(
        reference=reference,
        outcome=REFUSED,
        image_id=image_id,
        message=message,
        containers=_names(holders),
        children=children,
        flag=flag,
    )


def _remove_one(engine: Engine, reference: str, force: bool, with_containers: bool) -> RmiOutcome:
    what = f"rmi {reference}"
    try:
        image = engine.image(reference, what=what)
    except Missing as exc:
        return RmiOutcome(reference=reference, outcome=MISSING, image_id=None, message=exc.message)
    image_id = str(image["Id"])
    by_id = _is_id(reference, image)
    holders = _holders(engine, image_id)
    removed: list[str] = []
    spared: str | None = None
    if with_containers and holders:
        spared = will_stay(reference, image, by_id, force)
        if spared is not None and by_id:
            # The engine would refuse after the containers were gone: refuse before.
            return RmiOutcome(
                reference=reference,
                outcome=REFUSED,
                image_id=image_id,
                message=f"{reference}: nothing removed: {spared}; --with-containers --force "
                f"removes container(s) {', '.join(_names(holders))}, every tag and the image",
                containers=_names(holders),
                flag="--with-containers --force",
            )
        spared = spared or _parent_of(engine, image_id)
    if with_containers and holders and spared is None:
        running = [h for h in holders if h.running]
        if running and not force:
            return RmiOutcome(
                reference=reference,
                outcome=REFUSED,
                image_id=image_id,
                message=f"{reference} is used by running container {', '.join(_names(running))}: "
                "add --force to remove running containers",
                containers=_names(holders),
                flag="--with-containers --force",
            )
        for holder in holders:
            engine.remove_container(
                holder.id, force=holder.running, what=f"{what}: remove containers"
            )
            removed.append(holder.name)
        holders = []
    try:
        answer = engine.remove_image(reference, force=force)
    except Missing as exc:
        return RmiOutcome(
            reference=reference,
            outcome=MISSING,
            image_id=image_id,
            message=f"{what}: {exc.message}",
        )
    except Conflict as exc:  # in use, several names, child images: _refusal reads which
        children = _children(engine, image_id)
        refused = _refusal(reference, image_id, by_id, holders, children, exc.message)
        return _with_removed(refused, removed)
    except EngineRefused as exc:
        return RmiOutcome(
            reference=reference,
            outcome=REFUSED,
            image_id=image_id,
            message=f"{what}: {exc.message}",
            removed_containers=tuple(removed),
        )
    untagged = tuple(str(a["Untagged"]) for a in answer if "Untagged" in a)
    deleted = tuple(str(a["Deleted"]) for a in answer if "Deleted" in a)
    if image_id in deleted:
        message = f"{reference}: deleted {short_id(image_id)}"
        if holders:
            message += f" (stopped container {', '.join(_names(holders))} now has no image)"
        return RmiOutcome(
            reference=reference,
            outcome=DELETED,
            image_id=image_id,
            message=message,
            untagged=untagged,
            deleted=deleted,
            containers=_names(holders),
            removed_containers=tuple(removed),
        )
    return _untagged(
        engine, reference, image_id, untagged, deleted, removed, spared=spared is not None
    )


def _with_removed(outcome: RmiOutcome, removed: list[str]) -> RmiOutcome:
    from dataclasses import replace

    return replace(outcome, removed_containers=tuple(removed))


def _untagged(
    engine: Engine,
    reference: str,
    image_id: str,
    untagged: tuple[str, ...],
    deleted: tuple[str, ...],
    removed: list[str],
    spared: bool,
) -> RmiOutcome:
    left = engine.find_image(image_id)
    tags = tuple((left or {}).get("RepoTags") or ())
    children = _children(engine, image_id) if left else ()
    holders = _holders(engine, image_id) if left else []
    dangling = left is not None and not tags
    short = short_id(image_id)
    if tags:
        why = f"image {short} kept: still tagged {', '.join(tags)}"
    elif holders and not children:
        why = f"image {short} kept, now dangling: held by container {', '.join(_names(holders))}"
    elif children:
        why = f"image {short} kept, untagged: parent of {', '.join(children)}"
    else:
        why = f"image {short} kept"
    if spared and holders:
        why += f", so --with-containers kept its container(s): {', '.join(_names(holders))}"
    return RmiOutcome(
        reference=reference,
        outcome=UNTAGGED,
        image_id=image_id,
        message=f"{reference}: untagged; {why}",
        untagged=untagged,
        deleted=deleted,
        dangling=dangling and not children,
        containers=_names(holders),
        removed_containers=tuple(removed),
        children=children,
    )


def remove_images(
    engine: Engine,
    references: list[str],
    *,
    force: bool = False,
    with_containers: bool = False,
) -> list[RmiOutcome]:
    """Remove images by reference or ID, one outcome per reference (never stops at the first).

    Args:
        engine: the engine.
        references: image references or IDs, each validated already.
        force: the engine's force: untag an image a running container uses (it stays,
            dangling), delete one a stopped container uses, remove every tag of an ID.
        with_containers: first remove the containers created from the image (running ones
            only with force), so the image is really deleted; none when the image would stay
            anyway (other tags remain, child images), which the outcome says.

    Returns:
        One RmiOutcome per reference, in order.

    Raises:
        InvalidInput: no references.
        EngineUnreachable: no engine (refusals are outcomes, not exceptions).
    """
    if not references:
        raise InvalidInput("rmi: name at least one image")
    return [_remove_one(engine, ref, force, with_containers) for ref in references]


def rmi_failure(outcomes: list[RmiOutcome]) -> DockopsError | None:
    """The error that `rmi` exits with, or None when every reference was removed.

    One failure kind for all: missing → InvalidInput (2), else EngineRefused (1); some removed
    and some not → PartialFailure (5) carrying the outcomes.
    """
    failed = [o for o in outcomes if not o.ok]
    if not failed:
        return None
    text = "; ".join(o.message for o in failed)
    if len(failed) < len(outcomes):
        return PartialFailure(
            f"rmi: {len(failed)} of {len(outcomes)} not removed: {text}", result=outcomes
        )
    if all(o.outcome == MISSING for o in failed):
        return InvalidInput(text)
    return EngineRefused(text)
