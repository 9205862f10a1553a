"""rmi on podman: what docker's rmi does, without podman's forced DELETE.

Podman's compat DELETE /images (libimage's removal, seen on 4.3.1) differs from docker's:
- with force it first removes every container that uses the image, running or not, then the
  image. Docker never removes a container: it untags (running) or deletes the image under it
  (stopped). So dockops never sends force to podman: a last tag whose image a container uses
  goes through podman's own untag (the image stays, dangling, under its containers), and an ID
  with several names and no container loses them all by untag before a plain delete. Podman
  cannot delete an image a container uses at all: under a stopped container the tag goes and
  the image stays, where docker deletes it.
- an image with child images is deleted like any other, by ID as by tag (its layers stay: the
  children use them), and the answer says only Untagged. Docker keeps it as the children's
  untagged parent (by tag) or refuses (by ID).
- by ID with several names: 500 "... by ID with more than one tag ...: please force removal",
  where docker answers 409 "(must be forced) - image is referenced in multiple repositories".
- a digest is not one of the image's names (podman keeps digests with the image): removing one
  from an image that has other names is 500 "tag not known".
- the answer's Deleted IDs are bare hex and its names full (docker.io/team/app:1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockops.engine.api import Engine

SEVERAL_NAMES = "more than one tag"
UNKNOWN_TAG = "tag not known"


def podman_delete(
    engine: Engine,
    reference: str,
    image: dict[str, Any],
    *,
    by_id: bool,
    force: bool,
    held: bool,
    last_tag: str | None,
) -> list[dict[str, Any]]:
    """Remove `reference` as docker's rmi would, in podman's requests; the answer in the shape
    of docker's (Untagged/Deleted entries).

    Args:
        engine: a podman engine.
        reference: what the user named.
        image: its inspect document.
        by_id: named by ID.
        force: the user's --force.
        held: containers use the image.
        last_tag: the stored tag `reference` removes when it is the image's last name (None
            when names remain or it is no tag).
    """
    image_id = str(image["Id"])
    names = list(image.get("RepoTags") or ())
    if force and held and last_tag is not None:
        repository, _, tag = last_tag.rpartition(":")
        engine.untag(image_id, repository, tag)
        return [{"Untagged": last_tag}]
    if force and by_id and not held and len(names) > 1:
        # Not force even with no container seen: one made in between would be removed with it.
        # Then the delete is refused and the image is left without names, which is the lesser.
        engine.untag(image_id)
        return [{"Untagged": name} for name in names] + engine.remove_image(image_id)
    return engine.remove_image(reference)


def podman_refusal(
    reference: str, engine_text: str, stopped: tuple[str, ...], running: bool, several: bool
) -> tuple[str, str | None] | None:
    """The message and flag of a podman refusal that differs from docker's, or None when
    docker's wording holds: a digest among other names, or an image only stopped containers
    use (podman deletes none a container uses, even forced: --with-containers does)."""
    if UNKNOWN_TAG in engine_text and "@" in reference:
        return (
            f"{reference}: podman keeps digests with the image, not as names: it removes a "
            "digest only with the image's last name (remove the tags, or the image by ID)",
            None,
        )
    if not stopped or running:
        return None
    names = ", ".join(stopped)
    if several:
        return (
            f"{reference} is an ID with several tags, used by stopped container {names}: "
            "--with-containers --force removes them, every tag and the image (podman deletes "
            "no image a container uses)",
            "--with-containers --force",
        )
    return (
        f"{reference} is used by stopped container {names}: --with-containers removes them and "
        "the image (podman deletes no image a container uses, even with --force, which "
        "removes the tag only)",
        "--with-containers",
    )
