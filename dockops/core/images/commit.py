"""commit, tag and history: one engine call each, with readable results.

Podman (4.3) reads a commit's -c instructions its own way: one KEY=VALUE per ENV or LABEL (a
second pair becomes part of the first value), no HEALTHCHECK (refused), and ONBUILD accepted
but not kept. dockops sends ENV and LABEL to it one pair per instruction and refuses ONBUILD
before anything is made, so the image gets what docker would give it or nothing.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from dockops.core.images.listing import tags_of
from dockops.engine.errors import Refused, user_named
from dockops.errors import InvalidInput
from dockops.reference import familiar_name, parse_reference, qualified_id

if TYPE_CHECKING:
    from dockops.engine.api import Engine

# The instructions the daemon applies to a commit (20.10 accepts all but STOPSIGNAL, which
# later engines added; the daemon's own 400 covers that case).
CHANGE_INSTRUCTIONS = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def validate_changes(changes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Check each -c/--change is a Dockerfile instruction the daemon applies to a commit.

    Args:
        changes: e.g. ``["CMD [\"sh\"]", "ENV A=1", "EXPOSE 8080"]``.

    Returns:
        The changes, unchanged.

    Raises:
        InvalidInput: an unknown instruction, or one without arguments (the daemon would
            accept a bare ``CMD`` and store ``/bin/sh -c`` as the command).
    """
    for change in changes:
        instruction, _, argument = change.strip().partition(" ")
        if instruction.upper() not in CHANGE_INSTRUCTIONS:
            allowed = ", ".join(CHANGE_INSTRUCTIONS)
            raise InvalidInput(f"invalid change {change!r}: use one of {allowed}")
        if not argument.strip():
            raise InvalidInput(f"invalid change {change!r}: {instruction.upper()} needs arguments")
    return tuple(changes)


_PODMAN_READS = ("ENV", "LABEL", "ONBUILD")


def _pairs(change: str) -> list[str] | None:
    """An ENV or LABEL change as one instruction per KEY=VALUE, quoted the way podman strips
    quotes (one pair each end); None when it is neither or cannot be split safely."""
    instruction, _, argument = change.strip().partition(" ")
    if instruction.upper() not in ("ENV", "LABEL"):
        return None
    try:
        words = shlex.split(argument)
    except ValueError:
        return None
    if not words:
        return None
    if "=" not in words[0]:  # ENV KEY VALUE…, the old form: one pair, the rest is the value
        pairs = [(words[0], " ".join(words[1:]))]
    elif all("=" in word for word in words):
        pairs = [(key, value) for key, _, value in (w.partition("=") for w in words)]
    else:
        return None
    if any(not key or "=" in key for key, _ in pairs):
        return None
    return [f'{instruction.upper()} "{key}"="{value}"' for key, value in pairs]


def for_podman(changes: tuple[str, ...]) -> list[str]:
    """The changes as podman applies them as docker does (see the module docstring).

    Raises:
        InvalidInput: ONBUILD, which podman accepts and drops.
    """
    sent: list[str] = []
    for change in changes:
        if change.strip().upper().startswith("ONBUILD"):
            raise InvalidInput(
                f"invalid change {change!r}: podman does not keep ONBUILD in a committed image"
            )
        sent.extend(_pairs(change) or [change])
    return sent


@dataclass(frozen=True)
class CommitResult:
    id: str
    reference: str | None
    container: str
    message: str | None
    author: str | None
    changes: tuple[str, ...]
    paused: bool


def commit_container(
    engine: Engine,
    container: str,
    reference: str | None = None,
    *,
    message: str | None = None,
    author: str | None = None,
    changes: tuple[str, ...] = (),
    pause: bool = True,
) -> CommitResult:
    """Create an image from a container's filesystem changes and config.

    Args:
        engine: the engine.
        container: container name or ID.
        reference: repository[:tag] for the new image (tag defaults to latest); None leaves it
            untagged.
        message: the commit message (the image's Comment).
        author: the image's Author.
        changes: Dockerfile instructions applied to the image config (see validate_changes).
        pause: pause the container while committing (the engine's default).

    Returns:
        The new image's ID and what was asked.

    Raises:
        InvalidInput: a bad reference or change (also when the daemon rejects the change's
            arguments), or no such container.
        EngineRefused, EngineUnreachable: from the engine.
    """
    validate_changes(changes)
    repository = tag = None
    if reference is not None:
        ref = parse_reference(reference)
        if ref.digest:
            raise InvalidInput(f"invalid reference {reference!r}: a commit takes a tag")
        repository, tag = ref.repository, ref.tag or "latest"
    what = f"commit {container}"
    # Only these read differently on podman: ask which engine only for them.
    podman = any(c.strip().upper().startswith(_PODMAN_READS) for c in changes) and engine.is_podman
    try:
        with user_named("container", container, what):
            image_id = engine.commit(
                container,
                repository=repository,
                tag=tag,
                message=message,
                author=author,
                pause=pause,
                changes=for_podman(changes) if podman else list(changes),
                what=what,
            )
    except Refused as exc:
        # 400 is the daemon parsing our -c values ("Invalid containerPort: abc"); podman
        # answers 500 "CommitFailure: invalid change ..." for its own.
        if exc.status == 400 or (exc.status == 500 and "invalid change" in exc.message):
            raise InvalidInput(exc.message) from exc
        raise
    return CommitResult(
        id=qualified_id(image_id),
        reference=f"{repository}:{tag}" if repository else None,
        container=container,
        message=message,
        author=author,
        changes=tuple(changes),
        paused=pause,
    )


@dataclass(frozen=True)
class TagResult:
    source: str
    target: str
    id: str


def tag_image(engine: Engine, source: str, target: str) -> TagResult:
    """Give the image `source` the name `target` (repository[:tag], tag defaults to latest).

    Args:
        engine: the engine.
        source: an image reference or ID.
        target: the new name.

    Returns:
        Source, normalised target and the image ID.

    Raises:
        InvalidInput: a target with a digest, or no such source image.
        EngineRefused, EngineUnreachable: from the engine.
    """
    ref = parse_reference(target)
    if ref.digest:
        raise InvalidInput(f"invalid reference {target!r}: a tag cannot hold a digest")
    tag = ref.tag or "latest"
    with user_named("image", source, f"tag {source}"):
        image = engine.image(source, what=f"tag {source}")
        engine.tag(image["Id"], ref.repository, tag, what=f"tag {source} {target}")
    return TagResult(source=source, target=f"{ref.repository}:{tag}", id=str(image["Id"]))


@dataclass(frozen=True)
class HistoryRow:
    """One entry of an image's history; `id` is None where the engine says <missing> (the
    step's image is not in local storage, e.g. a pulled or loaded image)."""

    id: str | None
    created: datetime
    created_by: str
    size: int
    comment: str
    tags: tuple[str, ...]


def image_history(engine: Engine, reference: str) -> list[HistoryRow]:
    """The history of an image, newest step first, as `docker history` shows it.

    Args:
        engine: the engine.
        reference: an image reference or ID.

    Returns:
        One row per history step (steps that made no layer have size 0).

    Raises:
        InvalidInput: no such image.
        EngineRefused, EngineUnreachable: from the engine.
    """
    with user_named("image", reference, f"history {reference}"):
        steps = engine.history(reference, what=f"history {reference}")
    rows = [
        HistoryRow(
            id=None if step.get("Id") in (None, "", "<missing>") else qualified_id(str(step["Id"])),
            created=datetime.fromtimestamp(int(step.get("Created") or 0), tz=timezone.utc),
            created_by=str(step.get("CreatedBy") or ""),
            size=int(step.get("Size") or 0),
            comment=str(step.get("Comment") or ""),
            tags=tuple(familiar_name(t) for t in step.get("Tags") or ()),
        )
        for step in steps
    ]
    if any(row.tags for row in rows) or not engine.is_podman:
        return rows
    # Podman leaves every step's Tags empty; docker gives each step the tags of the local image
    # with that ID, and so does dockops.
    tags = {
        qualified_id(str(image["Id"])): tuple(familiar_name(t) for t in tags_of(image))
        for image in engine.images(all=True, what=f"history {reference}")
    }
    return [dataclasses.replace(row, tags=tags.get(row.id or "", ())) for row in rows]
