"""Filesystems as files: `export` a container's filesystem, `import` one as a one-layer image.

Both keep the files only. What they drop (layers, history, config) is part of every result, so
the CLI can say it and tests can pin it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from dockops.core.archive.files import Input, checked_first, open_input, shown
from dockops.core.archive.save_load import download_tar, upload
from dockops.core.images.commit import CHANGE_INSTRUCTIONS, validate_changes
from dockops.engine.errors import user_named
from dockops.errors import InvalidInput
from dockops.progress import ProgressCallback, ProgressEvent, ignore

if TYPE_CHECKING:
    from dockops.engine.api import Engine

# What `docker export` + `docker import` drop: the image's layering and history, and every
# config field a -c change can set (the same instructions a commit takes) unless one sets it.
CONFIG_FIELDS = CHANGE_INSTRUCTIONS
EXPORT_LOSES = ("layers", "history", *CONFIG_FIELDS)


@dataclass(frozen=True)
class ExportResult:
    container: str
    container_id: str
    path: str
    bytes: int
    sha256: str
    compressed: bool
    lost: tuple[str, ...] = EXPORT_LOSES


@dataclass(frozen=True)
class ImportResult:
    reference: str
    id: str
    source: str
    bytes: int
    changes: tuple[str, ...]
    message: str | None
    lost: tuple[str, ...]  # what the image lacks: history and every config field -c did not set


def export_container(
    engine: Engine,
    container: str,
    target: Path | BinaryIO,
    *,
    gzip: bool = False,
    progress: ProgressCallback = ignore,
) -> ExportResult:
    """Write a container's filesystem as a tar (no layers, history or config: see `lost`).

    Args:
        engine: the engine.
        container: container name or ID (validated by the caller).
        target: a file path (temp file + rename) or an open binary stream (stdout).
        gzip: compress with gzip.
        progress: called with bytes written so far.

    Returns:
        Where it went, its size and sha256, and what an export does not keep.

    Raises:
        InvalidInput: no such container.
        EngineRefused, EngineUnreachable: the engine failed; no file is left behind.
    """
    what = f"export {container}"
    with user_named("container", container, what):
        container_id = str(engine.container(container, what)["Id"])
    written = download_tar(
        engine,
        engine.export(container_id, what),
        target,
        gzip=gzip,
        what=what,
        progress=progress,
    )
    return ExportResult(
        container=container,
        container_id=container_id,
        path=shown(target),
        bytes=written.bytes,
        sha256=written.sha256,
        compressed=gzip,
    )


def _checking(given: Input, progress: ProgressCallback) -> Callable[[int], None]:
    def report(consumed: int) -> None:
        progress(
            ProgressEvent(item=given.name, status="checking", current=consumed, total=given.size)
        )

    return report


def lost_by_import(changes: list[str]) -> tuple[str, ...]:
    """History, and every config field no `-c` change sets again."""
    restored = {change.split(None, 1)[0].upper() for change in changes if change.strip()}
    return ("history", *(field for field in CONFIG_FIELDS if field not in restored))


def import_image(
    engine: Engine,
    source: Path | BinaryIO,
    reference: str,
    *,
    changes: list[str] | None = None,
    message: str | None = None,
    progress: ProgressCallback = ignore,
) -> ImportResult:
    """Make a one-layer image from a filesystem tar (plain or gzip), as `docker import` does.

    Args:
        engine: the engine.
        source: a file path, or an open binary stream (stdin).
        reference: REPOSITORY[:TAG] to give the image (validated by the caller).
        changes: Dockerfile config instructions to apply (CMD, ENV, ...).
        message: the commit message of the image's one history entry.
        progress: called with bytes read so far.

    Returns:
        The image's reference and ID, and what it lacks (`lost`).

    Raises:
        InvalidInput: bad reference or change, missing, corrupt or truncated input.
        EngineRefused, EngineUnreachable: the engine's own error text.
    """
    from dockops.reference import parse_reference

    parsed = parse_reference(reference)
    if parsed.digest:
        raise InvalidInput(f"invalid reference {reference!r}: import takes a tag, not a digest")
    changes = list(validate_changes(changes or []))
    tag = parsed.tag or "latest"
    # The whole name in `repo`, as the docker CLI sends it: Podman 4 ignores `tag` (the image
    # would be NAME:latest).
    params: dict[str, Any] = {"repo": f"{parsed.repository}:{tag}"}
    if changes:
        params["changes"] = changes
    if message:
        params["message"] = message
    with contextlib.ExitStack() as stack:
        given = stack.enter_context(open_input(source))
        name, what = given.name, f"import {given.name}"
        if engine.is_podman:
            given = stack.enter_context(checked_first(given, _checking(given, progress)))
        docs, consumed = upload(
            lambda pieces: engine.import_image(pieces, params, what), given, what, progress
        )
    image_id = ""
    for doc in docs:
        status = str(doc.get("status") or "")
        if status.startswith("sha256:"):
            image_id = status
    if not image_id:
        with user_named():
            image_id = str(engine.image(f"{parsed.repository}:{tag}", what)["Id"])
    return ImportResult(
        reference=f"{parsed.repository}:{tag}",
        id=image_id,
        source=name,
        bytes=consumed,
        changes=tuple(changes),
        message=message,
        lost=lost_by_import(changes),
    )
