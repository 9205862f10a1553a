"""Which names an rmi removes and which stay, by the engine's rules (pure).

Names are compared in docker's familiar form: podman stores full ones (docker.io/team/app:1,
localhost/app:1), docker familiar ones. See remove.py for the rules themselves.
"""

from __future__ import annotations

from typing import Any

from dockops.reference import familiar_name, parse_reference


def known_names(image: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The image's tags and digests, familiar."""
    tags = [familiar_name(t) for t in image.get("RepoTags") or () if t != "<none>:<none>"]
    digests = [familiar_name(d) for d in image.get("RepoDigests") or () if d != "<none>@<none>"]
    return tags, digests


def is_id(reference: str, image: dict[str, Any]) -> bool:
    """Was the image named by (a prefix of) its ID rather than by one of its names?"""
    bare = reference.removeprefix("sha256:")
    tags, digests = known_names(image)
    names = set(tags) | set(digests)
    named = reference in names or f"{reference}:latest" in names
    return not named and str(image["Id"]).removeprefix("sha256:").startswith(bare)


def familiar(reference: str, names: list[str] | None = None) -> str:
    """The name `reference` removes, familiar, as `names` (the image's, familiar) hold it:
    docker.io and library/ dropped, :latest added; a short name podman keeps under localhost/
    (localhost/app:1, which `app:1` names there) with its prefix."""
    ref = parse_reference(reference).familiar()
    if ref.digest:
        return f"{ref.repository}@{ref.digest}"
    name = f"{ref.repository}:{ref.tag or 'latest'}"
    local = f"localhost/{name}"
    return local if ref.domain is None and names and name not in names and local in names else name


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
    a tag or digest of it (pure: the rule remove.py lists)."""
    tags, digests = known_names(image)
    gone = familiar(reference, tags + digests)
    tags = [t for t in tags if t != gone]
    digests = [d for d in digests if d != gone]
    if "@" not in gone and not any(_repository(t) == _repository(gone) for t in tags):
        digests = [d for d in digests if _repository(d) != _repository(gone)]
    return (*tags, *digests)


def will_stay(reference: str, image: dict[str, Any], by_id: bool, force: bool) -> str | None:
    """Why removing `reference` leaves the image in place, or None when the engine deletes it
    (as far as its names tell: child images are looked up by the caller).

    By ID: several names without force is a refusal (nothing is removed); with force, or a
    single name, the image goes. By name: it goes when no name is left.
    """
    tags, digests = known_names(image)
    names = [*tags, *digests]
    if by_id:
        if not force and names and not _single_reference(names):
            return f"it has several names ({', '.join(names)}), which only --force removes by ID"
        return None
    left = names_left(reference, image)
    if not left:
        return None
    # Tags come first: a lone digest says so.
    return f"other {'digests' if '@' in left[0] else 'tags'} remain: {', '.join(left)}"


def last_tag(reference: str, image: dict[str, Any]) -> str | None:
    """The tag, as the engine stores it, that removing `reference` takes when no name is left
    after it; None when names remain or it names no tag."""
    if names_left(reference, image):
        return None
    tags, digests = known_names(image)
    gone = familiar(reference, tags + digests)
    return next((t for t in image.get("RepoTags") or () if familiar_name(t) == gone), None)
