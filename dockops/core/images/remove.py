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

Podman differs (remove_podman.py): dockops never lets its forced DELETE remove a container.
Names are compared in docker's familiar form (podman stores docker.io/team/app:1), and what
happened is read from the engine: an image that is gone was deleted, whatever the answer says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockops.core.images.remove_names import is_id, known_names, last_tag, will_stay
from dockops.core.images.remove_podman import (
    SEVERAL_NAMES,
    UNKNOWN_TAG,
    podman_delete,
    podman_refusal,
)
from dockops.engine.errors import Conflict, Missing
from dockops.errors import DockopsError, EngineRefused, InvalidInput, PartialFailure
from dockops.reference import familiar_name, qualified_id
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
            if qualified_id(str(c.get("ImageID"))) == image_id
        ),
        key=lambda h: h.name,
    )


def _children(engine: Engine, image_id: str) -> tuple[str, ...]:
    listed = engine.images(all=True)
    return tuple(
        sorted(
            familiar_name(next(iter(i.get("RepoTags") or []), "")) or short_id(i["Id"])
            for i in listed
            if i.get("ParentId") and qualified_id(str(i["ParentId"])) == image_id
        )
    )


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
    podman: bool,
) -> RmiOutcome:
    running = [h for h in holders if h.running]
    stopped = [h for h in holders if not h.running]
    names = ", ".join(_names(holders))
    several = "multiple repositories" in engine_text or SEVERAL_NAMES in engine_text
    special = podman and podman_refusal(
        reference, engine_text, _names(stopped), bool(running), several
    )
    if special:
        message, flag = special
    elif "child images" in engine_text:
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
    elif stopped and several:
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
    elif several:
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
    except Missing:
        # Docker's words on every engine (podman: "failed to find image ...: No such image").
        message = f"{what}: No such image: {reference}"
        return RmiOutcome(reference=reference, outcome=MISSING, image_id=None, message=message)
    image_id = qualified_id(str(image["Id"]))
    by_id = is_id(reference, image)
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
    podman = engine.is_podman
    try:
        answer = _delete(engine, reference, image, by_id, force, bool(holders), podman)
    except Missing as exc:
        return RmiOutcome(
            reference=reference,
            outcome=MISSING,
            image_id=image_id,
            message=f"{what}: {exc.message}",
        )
    except EngineRefused as exc:
        # In use, several names, child images (podman: several names, a digest among other
        # names, answered 500): _refusal reads which.
        if isinstance(exc, Conflict) or (podman and _podman_conflict(exc.message)):
            children = _children(engine, image_id)
            refused = _refusal(reference, image_id, by_id, holders, children, exc.message, podman)
            return _with_removed(refused, removed)
        return RmiOutcome(
            reference=reference,
            outcome=REFUSED,
            image_id=image_id,
            message=f"{what}: {exc.message}",
            removed_containers=tuple(removed),
        )
    untagged = tuple(familiar_name(str(a["Untagged"])) for a in answer if "Untagged" in a)
    deleted = tuple(qualified_id(str(a["Deleted"])) for a in answer if "Deleted" in a)
    # What the engine did, not what it said: podman deletes a parent image and answers only
    # Untagged.
    left = None if image_id in deleted else engine.find_image(image_id)
    if left is None:
        deleted = deleted if image_id in deleted else (*deleted, image_id)
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
    return _untagged(engine, reference, left, untagged, deleted, removed, spared=spared is not None)


def _delete(
    engine: Engine,
    reference: str,
    image: dict[str, Any],
    by_id: bool,
    force: bool,
    held: bool,
    podman: bool,
) -> list[dict[str, Any]]:
    """The engine's answer to removing `reference` (podman's way on podman)."""
    if not podman:
        return engine.remove_image(reference, force=force)
    last = None if by_id else last_tag(reference, image)
    return podman_delete(
        engine, reference, image, by_id=by_id, force=force, held=held, last_tag=last
    )


def _podman_conflict(text: str) -> bool:
    return SEVERAL_NAMES in text or UNKNOWN_TAG in text


def _with_removed(outcome: RmiOutcome, removed: list[str]) -> RmiOutcome:
    from dataclasses import replace

    return replace(outcome, removed_containers=tuple(removed))


def _untagged(
    engine: Engine,
    reference: str,
    left: dict[str, Any],
    untagged: tuple[str, ...],
    deleted: tuple[str, ...],
    removed: list[str],
    spared: bool,
) -> RmiOutcome:
    image_id = qualified_id(str(left["Id"]))
    tags = tuple(known_names(left)[0])
    children = _children(engine, image_id)
    holders = _holders(engine, image_id)
    dangling = not tags
    short = short_id(image_id)
    if tags:
        why = f"image {short} kept: still tagged {', '.join(tags)}"
    elif holders and not children:
        why = f"image {short} kept, now dangling: held by container {', '.join(_names(holders))}"
        if not any(h.running for h in holders):
            # Only podman leaves an image under a stopped container (it deletes none in use).
            why += "; --with-containers removes them and the image"
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
