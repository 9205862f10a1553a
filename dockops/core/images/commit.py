"""commit, tag and history: one engine call each, with readable results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from dockops.engine.errors import Refused, user_named
from dockops.errors import InvalidInput
from dockops.reference import parse_reference

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
    try:
        with user_named():
            image_id = engine.commit(
                container,
                repository=repository,
                tag=tag,
                message=message,
                author=author,
                pause=pause,
                changes=list(changes),
                what=what,
            )
    except Refused as exc:
        # 400 is the daemon parsing our -c values ("Invalid containerPort: abc").
        if exc.status == 400:
            raise InvalidInput(exc.message) from exc
        raise
    return CommitResult(
        id=image_id,
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
    with user_named():
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
    with user_named():
        steps = engine.history(reference, what=f"history {reference}")
    return [
        HistoryRow(
            id=None if step.get("Id") in (None, "", "<missing>") else str(step["Id"]),
            created=datetime.fromtimestamp(int(step.get("Created") or 0), tz=timezone.utc),
            created_by=str(step.get("CreatedBy") or ""),
            size=int(step.get("Size") or 0),
            comment=str(step.get("Comment") or ""),
            tags=tuple(step.get("Tags") or ()),
        )
        for step in steps
    ]
