"""Image lifecycle commands: images, search, pull, commit, history, layers, tag, rmi, push."""

from typing import Annotated

import typer

from dockops import render
from dockops.cli.common import JsonOpt, QuietOpt, RegistryOpt, images, long_running
from dockops.errors import InvalidInput
from dockops.reference import parse_reference, validate_container, validate_image
from dockops.render import Column
from dockops.units import human_age, human_size, short_id

ChangeOpt = Annotated[
    list[str] | None,
    typer.Option("--change", "-c", help="Dockerfile instruction to apply (repeatable)."),
]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="Commit message.")]
AllTagsOpt = Annotated[bool, typer.Option("--all-tags", "-a", help="Every tag of the repository.")]

IMAGE_COLUMNS = (
    Column("REPOSITORY", lambda r: r.repository),
    Column("TAG", lambda r: r.tag),
    Column("IMAGE ID", lambda r: short_id(r.id)),
    Column("CREATED", lambda r: human_age(r.created)),
    Column("SIZE", lambda r: human_size(r.size)),
    Column("CONTAINERS", lambda r: r.containers),
)
SEARCH_COLUMNS = (
    Column("NAME", lambda h: h.name),
    Column("DESCRIPTION", lambda h: _cut(h.description, 45)),
    Column("STARS", lambda h: h.stars),
    Column("OFFICIAL", lambda h: "[OK]" if h.official else ""),
)
TRANSFER_COLUMNS = (
    Column("TAG", lambda t: t.tag),
    Column("DIGEST", lambda t: t.digest),
)
HISTORY_COLUMNS = (
    Column("IMAGE", lambda r: short_id(r.id) if r.id else "<missing>"),
    Column("CREATED", lambda r: human_age(r.created)),
    Column("CREATED BY", lambda r: _cut(r.created_by, 45)),
    Column("SIZE", lambda r: human_size(r.size)),
    Column("COMMENT", lambda r: r.comment),
)
LAYER_COLUMNS = (
    Column("LAYER", lambda layer: short_id(layer.digest)),
    Column("SIZE", lambda layer: human_size(layer.size)),
    Column("IMAGES", lambda layer: layer.images),
    Column("CREATED BY", lambda layer: _cut(layer.created_by, 40)),
)
RMI_COLUMNS = (
    Column("REFERENCE", lambda o: o.reference),
    Column("RESULT", lambda o: o.outcome),
    Column("IMAGE ID", lambda o: short_id(o.image_id or "")),
    Column("DANGLING", lambda o: "yes" if o.dangling else ""),
    Column("CONTAINERS", lambda o: o.containers),
)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


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
    from dockops.core.images.listing import list_images
    from dockops.engine import connect

    rows = list_images(connect(), dangling=dangling, reference=reference)
    render.emit(rows, output, columns=IMAGE_COLUMNS)


REGISTRY_SEARCH_COLUMNS = (
    Column("REPOSITORY", lambda r: r.repository),
    Column("TAGS", lambda r: ", ".join(r.tags)),
)


def search(
    term: str,
    registry: RegistryOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 25,
    stars: Annotated[int, typer.Option("--stars", min=0, help="At least N stars.")] = 0,
    official: Annotated[bool, typer.Option("--official", help="Official images only.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the index.")
    ] = 20.0,
    json: JsonOpt = False,
) -> None:
    """Search Docker Hub through the daemon; with --registry, that registry's catalog (substring
    or glob) and tags."""
    output = render.output_mode(json)
    if registry is not None:
        from dockops.cli.common import private_registry
        from dockops.core.registry.browse import search_catalog
        from dockops.core.registry.client import registry_client

        address = private_registry(
            registry,
            missing="search --registry: no registry named, and no default "
            "(DOCKOPS_REGISTRY, config.toml)",
        )
        with registry_client(address) as api:
            found = search_catalog(api, term, limit=limit)
        render.emit(found, output, columns=REGISTRY_SEARCH_COLUMNS)
        return
    from dockops.core.images.search import search_images
    from dockops.engine import connect as connect_engine

    hits = search_images(
        connect_engine(),
        term,
        limit=limit,
        min_stars=stars,
        official_only=official,
        timeout=timeout,
    )
    render.emit(hits, output, columns=SEARCH_COLUMNS)


def pull(
    reference: str, all_tags: AllTagsOpt = False, json: JsonOpt = False, quiet: QuietOpt = False
) -> None:
    """Pull an image, with progress and retries on transient faults."""
    output = render.output_mode(json, quiet)
    images([reference])
    from dockops.core.images.transfer import pull_image

    result = long_running(
        lambda engine, report: pull_image(engine, reference, all_tags=all_tags, on_progress=report),
        progress=output is not render.Output.QUIET,
    )
    render.emit(
        result,
        output,
        columns=TRANSFER_COLUMNS,
        rows=result.tags,
        summary=result.status or f"pulled {result.reference}",
    )


def commit(
    container: str,
    reference: Annotated[str | None, typer.Argument()] = None,
    message: MessageOpt = None,
    author: Annotated[str | None, typer.Option("--author", "-a")] = None,
    change: ChangeOpt = None,
    no_pause: Annotated[
        bool, typer.Option("--no-pause", help="Do not pause the container while committing.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Create an image from a container's changes."""
    output = render.output_mode(json)
    validate_container(container)
    images([reference] if reference else [])
    from dockops.core.images.commit import commit_container, validate_changes

    changes = validate_changes(change or [])
    from dockops.engine import connect

    result = commit_container(
        connect(),
        container,
        reference,
        message=message,
        author=author,
        changes=changes,
        pause=not no_pause,
    )
    render.emit(result, output, summary=result.id)


def history(reference: str, json: JsonOpt = False) -> None:
    """One row per layer: id, created by, size, comment."""
    output = render.output_mode(json)
    images([reference])
    from dockops.core.images.commit import image_history
    from dockops.engine import connect

    render.emit(image_history(connect(), reference), output, columns=HISTORY_COLUMNS)


def layers(references: Annotated[list[str], typer.Argument()], json: JsonOpt = False) -> None:
    """Layer digests and sizes, which images share each, shared vs unique bytes."""
    output = render.output_mode(json)
    images(references)
    from dockops.core.images.layers import image_layers
    from dockops.engine import connect

    report = image_layers(connect(), references)
    lines = [
        f"{i.reference}: {human_size(i.size)} in {len(i.layers)} layer(s), "
        f"{human_size(i.shared_bytes)} shared, {human_size(i.unique_bytes)} unique"
        for i in report.images
    ]
    lines.append(
        f"stored: {human_size(report.stored_bytes)} for {human_size(report.total_bytes)} of images"
    )
    render.emit(report, output, columns=LAYER_COLUMNS, rows=report.layers, summary=lines)


def tag(source: str, target: str, json: JsonOpt = False) -> None:
    """Give an image another name."""
    output = render.output_mode(json)
    images([source])
    parse_reference(target)  # a name, never an image ID: said before the engine is asked
    from dockops.core.images.commit import tag_image
    from dockops.engine import connect

    result = tag_image(connect(), source, target)
    render.emit(result, output, summary=f"tagged {result.id[7:19]} as {result.target}")


def rmi(
    references: Annotated[list[str], typer.Argument()],
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Untag images in use; delete by ID.")
    ] = False,
    with_containers: Annotated[
        bool,
        typer.Option(
            "--with-containers",
            help="Remove the containers using it first; none when the image stays "
            "(other tags or child images keep it).",
        ),
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Remove images; says which were deleted, untagged or refused (and why)."""
    output = render.output_mode(json)
    images(references)
    from dockops.core.images.remove import remove_images, rmi_failure
    from dockops.engine import connect

    outcomes = remove_images(connect(), references, force=force, with_containers=with_containers)
    failure = rmi_failure(outcomes)
    # The error boundary prints only the message; the per-reference outcomes are rendered here
    # (a lone failing reference in table form is said by the error line alone).
    if output is render.Output.JSON or failure is None or len(outcomes) > 1:
        notes = [o.message for o in outcomes if (o.ok and o.outcome != "deleted") or o.containers]
        render.emit(outcomes, output, columns=RMI_COLUMNS, summary=notes)
    if failure is not None:
        raise failure


def push(
    reference: str,
    all_tags: AllTagsOpt = False,
    via: Annotated[
        str,
        typer.Option(
            "--via",
            metavar="daemon|direct",
            help="daemon: the engine pushes; direct: dockops compresses and uploads the layers.",
        ),
    ] = "daemon",
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Push an image; an error in the daemon's stream is a failure."""
    output = render.output_mode(json, quiet)
    images([reference])
    if via not in ("daemon", "direct"):
        raise InvalidInput(f"--via {via}: choose direct or daemon")
    if via == "direct":
        if all_tags:
            raise InvalidInput("push --all-tags goes --via daemon")
        from dockops.core.push_private.push import direct_reference, push_reference_direct

        direct_reference(reference)  # bad input before the engine is asked

        direct = long_running(
            lambda engine, report: push_reference_direct(engine, reference, on_progress=report),
            progress=output is not render.Output.QUIET,
        )
        render.emit(direct, output, summary=f"pushed {direct.reference} {direct.digest}")
        return
    from dockops.core.images.transfer import push_image

    result = long_running(
        lambda engine, report: push_image(engine, reference, all_tags=all_tags, on_progress=report),
        progress=output is not render.Output.QUIET,
    )
    render.emit(
        result,
        output,
        columns=TRANSFER_COLUMNS,
        rows=result.tags,
        summary=f"pushed {result.reference}",
    )


def register(app: typer.Typer) -> None:
    app.command("images")(images_cmd)
    for command in (search, pull, commit, history, layers, tag, rmi, push):
        app.command(command.__name__)(command)
