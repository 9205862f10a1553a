"""Images and filesystems as files: save/load (whole images), export/import (filesystems)."""

from pathlib import Path
from typing import Annotated

import typer

from dockops.cli.common import JsonOpt, images, not_built
from dockops.cli.images import ChangeOpt, MessageOpt
from dockops.reference import validate_container


def save(
    references: Annotated[list[str], typer.Argument()],
    output: Annotated[
        str, typer.Option("--output", "-o", help="FILE, .tar.gz for gzip, - for stdout.")
    ],
    json: JsonOpt = False,
) -> None:
    """Save images to one tar, streamed in constant memory."""
    images(references)
    raise not_built("save")


def load(
    input_: Annotated[
        str, typer.Option("--input", "-i", help="FILE (tar or tar.gz), - for stdin.")
    ],
    json: JsonOpt = False,
) -> None:
    """Load images from a tar, streamed."""
    raise not_built("load")


def export(
    container: str,
    output: Annotated[str, typer.Option("--output", "-o", help="FILE, - for stdout.")],
) -> None:
    """Export a container's filesystem (no history, no config)."""
    validate_container(container)
    raise not_built("export")


def import_(
    file: Path, reference: str, change: ChangeOpt = None, message: MessageOpt = None
) -> None:
    """Import a filesystem tar as an image (history and config are lost unless -c restores)."""
    images([reference])
    raise not_built("import")


def register(app: typer.Typer) -> None:
    for command in (save, load, export):
        app.command(command.__name__)(command)
    app.command("import")(import_)
