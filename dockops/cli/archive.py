"""Images and filesystems as files: save/load (whole images), export/import (filesystems).

`-o -` writes the raw tar to stdout: then stdout carries no JSON (--json is refused) and the
summary goes nowhere; `-i -` / `FILE -` read stdin. Progress goes to stderr.
"""

import io
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dockops import render
from dockops.cli.common import JsonOpt, QuietOpt, images, long_running
from dockops.cli.images import ChangeOpt, MessageOpt
from dockops.errors import InvalidInput
from dockops.reference import validate_container
from dockops.render import Column, Output
from dockops.units import human_size, short_id

GzipOpt = Annotated[
    bool, typer.Option("--gzip", help="Compress with gzip (implied by .tar.gz / .tgz).")
]

IMAGE_COLUMNS = (
    Column("REFERENCE", lambda i: i.reference or "<none>"),
    Column("IMAGE ID", lambda i: short_id(i.id)),
)


def _output_target(output: str, json: bool, quiet: bool, gzip: bool) -> tuple[Any, Output, bool]:
    from dockops.core.archive.files import check_output_path, wants_gzip

    mode = render.output_mode(json, quiet)
    path = check_output_path(output)
    if path is None:
        if mode is Output.JSON:
            raise InvalidInput("--json cannot be used with -o -: stdout carries the tar")
        if sys.stdout.isatty():
            raise InvalidInput("refusing to write a tar to a terminal: use -o FILE or a pipe")
        return sys.stdout.buffer, Output.QUIET, gzip
    return path, mode, gzip or wants_gzip(output)


def _input_source(path: str) -> Any:
    from dockops.core.archive.files import check_input_path

    source = check_input_path(path)
    if source is None:
        if sys.stdin.isatty():
            raise InvalidInput("stdin is a terminal: pipe a tar into it or give a FILE")
        return sys.stdin.buffer
    return source


def _note(text: str, mode: Output) -> None:
    if mode is Output.TABLE:
        sys.stderr.write(f"note: {text}\n")


def save(
    references: Annotated[list[str], typer.Argument(help="Images (references or IDs).")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="FILE, .tar.gz for gzip, - for stdout.")
    ],
    gzip: GzipOpt = False,
    delta_from: Annotated[
        list[str] | None,
        typer.Option(
            "--delta-from",
            metavar="BASE",
            help="Leave out the layers this image or archive already holds (repeatable).",
        ),
    ] = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Save images to one tar, streamed in constant memory."""
    images(references)
    import os

    images([b for b in delta_from or [] if not os.path.isfile(b)])
    target, mode, compress = _output_target(output, json, quiet, gzip)
    if delta_from:
        from dockops.core.archive.delta import save_delta

        delta = long_running(
            lambda engine, report: save_delta(
                engine, references, delta_from, target, gzip=compress, progress=report
            ),
            progress=not (json or quiet),
        )
        render.emit(
            delta,
            mode,
            columns=IMAGE_COLUMNS,
            rows=delta.images,
            summary=f"saved a delta to {delta.path}: {human_size(delta.bytes)} "
            f"(the full archive: {human_size(delta.full_bytes)}; {len(delta.omitted)} layers "
            f"left out), sha256 {delta.sha256}",
        )
        return
    from dockops.core.archive.save_load import save_images

    result = long_running(
        lambda engine, report: save_images(
            engine, references, target, gzip=compress, progress=report
        ),
        progress=not (json or quiet),
    )
    render.emit(
        result,
        mode,
        columns=IMAGE_COLUMNS,
        rows=result.images,
        summary=f"saved to {result.path}: {human_size(result.bytes)}, sha256 {result.sha256}",
    )


def load(
    input_: Annotated[
        str, typer.Option("--input", "-i", help="FILE (tar or tar.gz), - for stdin.")
    ],
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Load images from a tar, streamed; a delta archive only where its base layers are."""
    mode = render.output_mode(json, quiet)
    source = _input_source(input_)
    from dockops.core.archive.delta_record import read_delta
    from dockops.core.archive.files import HeadFirst, read_head
    from dockops.core.archive.save_load import load_images
    from dockops.core.archive.splice import load_delta

    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = read_head(handle)
    else:  # stdin: what was read to look is put back in front
        head = read_head(source)
        source = io.BufferedReader(HeadFirst(head, source))
    delta = read_delta(head)

    def work(engine: Any, report: Any) -> Any:
        if delta is not None:
            return load_delta(engine, source, delta, input_, progress=report)
        return load_images(engine, source, progress=report)

    result = long_running(work, progress=not (json or quiet))
    render.emit(result, mode, columns=IMAGE_COLUMNS, rows=result.images)


def export(
    container: Annotated[str, typer.Argument(help="Container name or ID.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="FILE, .tar.gz for gzip, - for stdout.")
    ],
    gzip: GzipOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Export a container's filesystem (no layers, history or config)."""
    validate_container(container)
    target, mode, compress = _output_target(output, json, quiet, gzip)
    from dockops.core.archive.filesystem import export_container

    result = long_running(
        lambda engine, report: export_container(
            engine, container, target, gzip=compress, progress=report
        ),
        progress=not (json or quiet),
    )
    render.emit(
        result,
        mode,
        summary=f"exported {container} to {result.path}: {human_size(result.bytes)},"
        f" sha256 {result.sha256}",
    )
    # With -o - this is the only word on what was left out; stdout holds the tar.
    _note(
        "the file holds the filesystem only: the image's layers, history and config"
        " (CMD, ENTRYPOINT, ENV, WORKDIR, ...) are not in it; `dockops import -c` can set"
        " config again",
        Output.TABLE if output == "-" and not quiet else mode,
    )


def import_(
    file: Annotated[str, typer.Argument(help="Filesystem tar (or tar.gz); - for stdin.")],
    reference: Annotated[str, typer.Argument(help="REPOSITORY[:TAG] for the new image.")],
    change: ChangeOpt = None,
    message: MessageOpt = None,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Import a filesystem tar as an image (history and config are lost unless -c restores)."""
    images([reference])
    from dockops.core.archive.filesystem import import_image
    from dockops.core.images.commit import validate_changes

    changes = list(validate_changes(change or []))
    mode = render.output_mode(json, quiet)
    source = _input_source(file)
    result = long_running(
        lambda engine, report: import_image(
            engine, source, reference, changes=changes, message=message, progress=report
        ),
        progress=not (json or quiet),
    )
    render.emit(result, mode, summary=f"imported {result.reference} ({short_id(result.id)})")
    _note(
        "an imported image has one layer and no history; not set (use -c to set them):"
        f" {', '.join(f for f in result.lost if f != 'history')}",
        mode,
    )


def register(app: typer.Typer) -> None:
    for command in (save, load, export):
        app.command(command.__name__)(command)
    app.command("import")(import_)
