"""Image lifecycle commands: images, search, pull, commit, history, layers, tag, rmi, push."""

from typing import Annotated

import typer

from dockops import render
from dockops.cli.common import JsonOpt, QuietOpt, RegistryOpt, images, not_built
from dockops.reference import validate_container, validate_image
from dockops.render import Column
from dockops.units import human_age, human_size

ChangeOpt = Annotated[
    list[str] | None,
    typer.Option("--change", "-c", help="Dockerfile instruction to apply (repeatable)."),
]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")]
AllTagsOpt = Annotated[bool, typer.Option("--all-tags", "-a", help="Every tag of the repository.")]

IMAGE_COLUMNS = (
    Column("REPOSITORY", lambda r: r.repository),
    Column("TAG", lambda r: r.tag),
    Column("IMAGE ID", lambda r: r.short_id),
    Column("CREATED", lambda r: human_age(r.created)),
    Column("SIZE", lambda r: human_size(r.size)),
    Column("CONTAINERS", lambda r: r.containers),
)


def images_cmd(
    reference: Annotated[
        str | None, typer.Argument(help="Only images matching REPOSITORY[:TAG].")
    ] = None,
    dangling: Annotated[bool, typer.Option("--dangling", help="Only untagged images.")] = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """List images with the containers (running or stopped) using each."""
    output = render.output_mode(json, quiet)
    if reference is not None:
        validate_image(reference)
    from dockops.core.images import list_images
    from dockops.engine import get_client

    rows = list_images(get_client(), dangling=dangling, reference=reference)
    render.emit(rows, output, columns=IMAGE_COLUMNS)


def search(
    term: str,
    registry: RegistryOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 25,
    stars: Annotated[int, typer.Option("--stars", min=0, help="At least N stars.")] = 0,
    official: Annotated[bool, typer.Option("--official", help="Official images only.")] = False,
    json: JsonOpt = False,
) -> None:
    """Search Docker Hub through the daemon, or a private registry's catalog."""
    raise not_built("search")


def pull(reference: str, all_tags: AllTagsOpt = False, json: JsonOpt = False) -> None:
    """Pull an image, with progress and retries on transient faults."""
    images([reference])
    raise not_built("pull")


def commit(
    container: str,
    reference: Annotated[str | None, typer.Argument()] = None,
    message: MessageOpt = None,
    author: Annotated[str | None, typer.Option("--author", "-a")] = None,
    change: ChangeOpt = None,
    no_pause: Annotated[bool, typer.Option("--no-pause")] = False,
    json: JsonOpt = False,
) -> None:
    """Create an image from a container's changes."""
    validate_container(container)
    images([reference] if reference else [])
    raise not_built("commit")


def history(reference: str, json: JsonOpt = False) -> None:
    """One row per layer: id, created by, size, comment."""
    images([reference])
    raise not_built("history")


def layers(references: Annotated[list[str], typer.Argument()], json: JsonOpt = False) -> None:
    """Layer digests and sizes, which images share each, shared vs unique bytes."""
    images(references)
    raise not_built("layers")


def tag(source: str, target: str) -> None:
    """Give an image another name."""
    images([source, target])
    raise not_built("tag")


def rmi(
    references: Annotated[list[str], typer.Argument()],
    force: Annotated[bool, typer.Option("--force", "-f")] = False,
    with_containers: Annotated[
        bool, typer.Option("--with-containers", help="Remove the containers using it first.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Remove images; says which were deleted, untagged or refused (and why)."""
    images(references)
    raise not_built("rmi")


def push(reference: str, all_tags: AllTagsOpt = False, json: JsonOpt = False) -> None:
    """Push an image; an error in the daemon's stream is a failure."""
    images([reference])
    raise not_built("push")


def register(app: typer.Typer) -> None:
    app.command("images")(images_cmd)
    for command in (search, pull, commit, history, layers, tag, rmi, push):
        app.command(command.__name__)(command)
