"""The private registry: registry up/secure/down/status/ls/tags/show/rm/gc/prune, login,
logout, push-private. The commands on the registry's containers are in registry_server.py."""

import sys
from typing import Annotated

import typer

from dockops import render
from dockops.cli import registry_server as server
from dockops.cli.common import (
    DryRunOpt,
    JsonOpt,
    QuietOpt,
    RegistryOpt,
    images,
    long_running,
    private_registry,
    read_password,
)
from dockops.errors import InvalidInput
from dockops.reference import validate_registry
from dockops.units import human_size, parse_duration, short_id

ViaOpt = Annotated[
    str,
    typer.Option(
        "--via",
        metavar="auto|direct|daemon",
        help="direct: dockops compresses (isal) and uploads the layers; daemon: docker push; "
        "auto: direct for an engine on this machine, else daemon.",
    ),
]
registry_app = typer.Typer(help="Run and manage a private registry.", no_args_is_help=True)
for _command in (server.up, server.secure, server.down, server.status):
    registry_app.command(_command.__name__)(_command)


def _repository(text: str) -> str:
    """A repository path inside the registry (no host, tag or digest)."""
    from dockops.reference import parse_reference

    ref = parse_reference(text)
    if ref.domain is not None or ref.tag or ref.digest:
        raise InvalidInput(
            f"{text}: give a repository name inside the registry, without host or tag"
        )
    return ref.path


def _tagged(text: str) -> tuple[str, str]:
    from dockops.reference import parse_reference

    ref = parse_reference(text)
    if ref.domain is not None or ref.digest or not ref.tag:
        raise InvalidInput(f"{text}: give REPO:TAG inside the registry, without host or digest")
    return ref.path, ref.tag


@registry_app.command("ls")
def ls(
    registry: RegistryOpt = None,
    filter_: Annotated[str | None, typer.Option("--filter", metavar="GLOB")] = None,
    json: JsonOpt = False,
) -> None:
    """List repositories (the catalog, all pages)."""
    address = private_registry(registry)
    from dockops.core.registry.browse import catalog, matches
    from dockops.core.registry.client import registry_client

    with registry_client(address) as api:
        names = [name for name in catalog(api) if matches(name, filter_)]
    render.emit(names, render.output_mode(json), columns=(render.Column("REPOSITORY", str),))


@registry_app.command("tags")
def tags(repo: str, registry: RegistryOpt = None, json: JsonOpt = False) -> None:
    """List a repository's tags."""
    repository = _repository(repo)
    address = private_registry(registry)
    from dockops.core.registry.browse import tags as list_tags
    from dockops.core.registry.client import registry_client

    with registry_client(address) as api:
        found = list_tags(api, repository)
    render.emit(found, render.output_mode(json), columns=(render.Column("TAG", str),))


LAYER_COLUMNS = (
    render.Column("DIGEST", lambda layer: layer.digest),
    render.Column("SIZE", lambda layer: human_size(layer.size)),
)


@registry_app.command("show")
def show(reference: str, registry: RegistryOpt = None, json: JsonOpt = False) -> None:
    """Digest, layers, total size and creation time of REPO:TAG."""
    repository, tag = _tagged(reference)
    address = private_registry(registry)
    from dockops.core.registry.browse import show as show_manifest
    from dockops.core.registry.client import registry_client

    with registry_client(address) as api:
        info = show_manifest(api, repository, tag)
    platforms = ", ".join(f"{p.os}/{p.architecture}" for p in info.platforms)
    render.emit(
        info,
        render.output_mode(json),
        columns=LAYER_COLUMNS if info.layers else (),
        rows=info.layers,
        summary=[
            f"{address}/{info.reference} {info.digest}",
            f"{info.media_type}; "
            + (f"platforms: {platforms}" if info.platforms else f"{len(info.layers)} layers")
            + f"; {human_size(info.total_size)}"
            + (f"; created {info.created}" if info.created else ""),
        ],
    )


@registry_app.command("rm")
def rm(
    reference: str,
    registry: RegistryOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also delete the other tags sharing the digest.")
    ] = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Delete REPO:TAG by digest (refuses when other tags share it, unless --force, and always
    when an index that stays references it); an index goes with its images."""
    repository, tag = _tagged(reference)
    address = private_registry(registry)
    from dockops.core.registry.client import registry_client
    from dockops.core.registry.remove import remove_tag

    with registry_client(address) as api:
        result = remove_tag(api, repository, tag, force=force, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    render.emit(
        result,
        render.output_mode(json),
        summary=f"{verb} {result.digest} ({', '.join(result.tags_removed)})"
        + (
            f" and the {len(result.children_removed)} manifests it references"
            if result.children_removed
            else ""
        )
        + "; run dockops registry gc to free the space",
    )


PRUNE_COLUMNS = (
    render.Column("TAG", lambda a: a.tag),
    render.Column("DIGEST", lambda a: a.digest[:19]),
    render.Column("CREATED", lambda a: a.created),
    render.Column(
        "ACTION",
        lambda a: (
            f"keep: {a.reason}"
            if a.reason
            else "delete" + (f" (an index of {len(a.children)})" if a.children else "")
        ),
    ),
)


registry_app.command("gc")(server.gc)


@registry_app.command("prune")
def prune(
    repo: str,
    registry: RegistryOpt = None,
    keep: Annotated[int | None, typer.Option("--keep", min=0)] = None,
    older_than: Annotated[str | None, typer.Option("--older-than", metavar="DUR")] = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Retention: keep the newest N tags of REPO (by the image's created time; an index is one
    tag, as old as its newest image, and is deleted with its images)."""
    repository = _repository(repo)
    from datetime import timedelta

    age = timedelta(seconds=parse_duration(older_than)) if older_than else None
    address = private_registry(registry)
    from dockops.core.registry.client import registry_client
    from dockops.core.registry.remove import prune_repository

    with registry_client(address) as api:
        result = prune_repository(api, repository, keep=keep, older_than=age, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    render.emit(
        result,
        render.output_mode(json),
        columns=PRUNE_COLUMNS,
        rows=[*result.removed, *result.kept],
        summary=f"{verb} {len(result.removed)} tags ({len(result.deleted_digests)} digests"
        + (
            f", and {len(result.deleted_children)} manifests of the deleted indexes"
            if result.deleted_children
            else ""
        )
        + f"), kept {len(result.kept)}",
    )


def login(
    registry: Annotated[str, typer.Argument(metavar="REGISTRY")],
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Check credentials against the registry, then store them where docker reads them."""
    validate_registry(registry)
    if username is None:
        if password_stdin or not sys.stdin.isatty():
            raise InvalidInput("give the user name with -u USER")
        username = typer.prompt("Username")
    password = read_password(password_stdin)
    from dockops.core.registry.login import login as login_core

    result = login_core(registry, username, password)
    render.emit(
        result,
        render.output_mode(),
        summary=f"logged in to {result.registry} as {result.username} "
        f"(stored in {result.stored_in}, {result.config})",
    )


def logout(registry: Annotated[str, typer.Argument(metavar="REGISTRY")]) -> None:
    """Forget the stored credentials of REGISTRY."""
    validate_registry(registry)
    from dockops.core.registry.login import logout as logout_core

    result = logout_core(registry)
    render.emit(
        result,
        render.output_mode(),
        summary=f"removed the login for {registry}"
        if result.removed
        else f"not logged in to {registry}",
    )


def push_private(
    reference: str,
    registry: RegistryOpt = None,
    as_: Annotated[str | None, typer.Option("--as", metavar="NAME[:TAG]")] = None,
    keep_tag: Annotated[bool, typer.Option("--keep-tag")] = False,
    move_tag: Annotated[
        bool,
        typer.Option(
            "--move-tag",
            help="When the local tag REGISTRY/NAME:TAG names another image, move it to this "
            "one (it stays there); refused without it.",
        ),
    ] = False,
    via: ViaOpt = "auto",
    json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Push REF to the private registry as REGISTRY/NAME:TAG and verify the digest there."""
    output = render.output_mode(json, quiet)
    images([reference])
    address = private_registry(registry)
    from dockops.core.push_private.push import push_private as push_core
    from dockops.core.push_private.push import resolve_via, target

    resolve_via(via)
    target(reference, address, as_)  # a bad name fails before the engine is asked
    result = long_running(
        lambda engine, report: push_core(
            engine,
            reference,
            address,
            as_=as_,
            keep_tag=keep_tag,
            move_tag=move_tag,
            via=via,
            on_progress=report,
        ),
        progress=output is not render.Output.QUIET,
    )
    summary = f"pushed {result.reference} {result.digest} (verified)"
    if result.moved_from:
        summary += f"; moved the local tag {result.reference} from {short_id(result.moved_from)}"
    render.emit(result, output, summary=summary)


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("push-private")(push_private)
