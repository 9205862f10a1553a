"""The private registry: registry up/secure/down/status/ls/tags/show/rm/gc/prune, login,
logout, push-private."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from dockops import render
from dockops.cli.common import (
    DryRunOpt,
    JsonOpt,
    NameOpt,
    QuietOpt,
    RegistryOpt,
    images,
    read_password,
    streamed,
)
from dockops.errors import InvalidInput
from dockops.reference import validate_container, validate_registry
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
NetworkOpt = Annotated[str, typer.Option("--network", metavar="bridge|host")]
registry_app = typer.Typer(help="Run and manage a private registry.", no_args_is_help=True)


@registry_app.command("up")
def up(
    name: NameOpt = "myregistry",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 5000,
    bind: Annotated[str, typer.Option("--bind", metavar="ADDR")] = "0.0.0.0",
    image: Annotated[str, typer.Option("--image")] = "registry:2",
    data: Annotated[Path | None, typer.Option("--data", metavar="DIR")] = None,
    network: NetworkOpt = "bridge",
    json: JsonOpt = False,
) -> None:
    """Run registry:2 (restart=always, deletes enabled); idempotent."""
    images([image])
    validate_container(name)
    from dockops.config import update_config
    from dockops.core.images.transfer import pull_image
    from dockops.core.registry_server.deploy import RegistrySpec, registry_up
    from dockops.engine.address import get_client

    spec = RegistrySpec(
        name=name,
        image=image,
        port=port,
        bind=bind,
        network=network,
        data=str(data.absolute()) if data is not None else None,
    )
    client = get_client(long_running=True)
    result = registry_up(client, spec, ensure_image=lambda ref: pull_image(client, ref))
    update_config(registry=result.address)
    render.emit(
        result,
        render.output_mode(json),
        summary=f"registry {result.name} {result.state} at {result.address} "
        f"(data: {result.data}); default registry is now {result.address}",
    )


@registry_app.command("secure")
def secure(
    host: Annotated[str, typer.Option("--host", help="IP or DNS name clients use.")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 443,
    name: NameOpt = "myregistry",
    user: Annotated[str | None, typer.Option("--user")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    certs_dir: Annotated[Path | None, typer.Option("--certs-dir")] = None,
    certs_d: Annotated[
        Path | None,
        typer.Option("--certs-d", help="The daemon's certs.d [default: /etc/docker/certs.d]."),
    ] = None,
    frontend_image: Annotated[str, typer.Option("--frontend-image")] = "nginx:stable",
    network: Annotated[
        str | None,
        typer.Option("--network", metavar="bridge|host", help="Default: the registry's."),
    ] = None,
    trust: Annotated[bool, typer.Option("--trust/--no-trust")] = True,
    rotate: Annotated[bool, typer.Option("--rotate", help="Make a new CA.")] = False,
    json: JsonOpt = False,
) -> None:
    """TLS (self-signed CA) and basic auth in front of the registry, through nginx."""
    images([frontend_image])
    validate_container(name)
    from dockops.core.registry_server.deploy import hostport

    validate_registry(hostport(host, port))
    password = read_password(password_stdin, confirm=True) if user is not None else None
    if password_stdin and user is None:
        raise InvalidInput("--password-stdin needs --user")
    from dockops.config import config_path
    from dockops.core.registry_server.secure import SecureSpec, secure_registry
    from dockops.engine.address import get_client

    directory = certs_dir or config_path().parent / "registries" / name
    spec = SecureSpec(
        name=name,
        host=host,
        port=port,
        image=frontend_image,
        certs_dir=directory.absolute(),
        network=network,
    )
    result = secure_registry(
        get_client(long_running=True),
        spec,
        user=user,
        password=password,
        rotate=rotate,
        certs_d=certs_d,
        install_trust=trust,
    )
    checked = "checked: 401 without credentials"
    if result.check.authenticated:
        checked += f", {result.check.authenticated} with them"
    if result.check.skipped:
        checked = f"not checked: {result.check.skipped}"
    backend = result.backend
    plain = f"plain HTTP only on {backend.now or 'loopback'}"
    if backend.change != "unchanged":
        moved = "moved to" if backend.change == "rebound" else "unpublished; nginx reaches it as"
        plain = f"plain HTTP {moved} {backend.now} (was open at {', '.join(backend.was)})"
    render.emit(
        result,
        render.output_mode(json),
        summary=f"registry {name} served over TLS at https://{result.registry} "
        f"(frontend {result.frontend}; CA {'new' if result.ca_created else 'kept'}, "
        f"{result.ca_fingerprint}; files in {result.certs_dir}); {plain}; "
        + (f"trusted through {result.trusted_at}; " if result.trusted_at else "not trusted; ")
        + checked,
    )


@registry_app.command("down")
def down(
    name: NameOpt = "myregistry",
    purge: Annotated[bool, typer.Option("--purge", help="Also remove its data volume.")] = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Stop and remove the registry (and its frontend and network)."""
    validate_container(name)
    from dockops.core.registry_server.deploy import registry_down
    from dockops.engine.address import get_client

    result = registry_down(get_client(), name, purge=purge, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    render.emit(
        result,
        render.output_mode(json),
        summary=f"{verb}: {', '.join(result.removed) or 'nothing'}"
        + (f"; kept: {', '.join(result.kept)}" if result.kept else ""),
    )


STATUS_COLUMNS = (
    render.Column("CONTAINER", lambda p: p.container),
    render.Column("STATE", lambda p: p.state),
    render.Column("IMAGE", lambda p: p.image),
    render.Column("RESTART", lambda p: p.restart),
    render.Column("ADDRESS", lambda p: p.address),
)


@registry_app.command("status")
def status(name: NameOpt = "myregistry", json: JsonOpt = False) -> None:
    """Container state, address, TLS, and whether the daemon trusts it."""
    validate_container(name)
    from dockops.core.registry_server.status import registry_status
    from dockops.engine.address import get_client

    result = registry_status(get_client(), name)
    for warning in result.warnings:  # on stderr, in --json runs too: a script logs it
        sys.stderr.write(f"warning: {warning}\n")
    trusted = "" if result.trusted is None else (", trusted" if result.trusted else ", NOT trusted")
    render.emit(
        result,
        render.output_mode(json),
        columns=STATUS_COLUMNS,
        rows=[result.registry, result.frontend],
        summary=f"{result.address}: {'TLS' if result.tls else 'plain HTTP'}{trusted}; "
        f"/v2/ answers {result.answer}",
    )


def _registry(flag: str | None) -> str:
    from dockops.config import resolve_registry

    address = resolve_registry(flag)
    if address is None:
        raise InvalidInput(
            "no private registry: pass --registry HOST:PORT, set DOCKOPS_REGISTRY, "
            "or run dockops registry up"
        )
    return address


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
    address = _registry(registry)
    from dockops.core.registry.browse import catalog, matches
    from dockops.core.registry.client import registry_client

    with registry_client(address) as api:
        names = [name for name in catalog(api) if matches(name, filter_)]
    render.emit(names, render.output_mode(json), columns=(render.Column("REPOSITORY", str),))


@registry_app.command("tags")
def tags(repo: str, registry: RegistryOpt = None, json: JsonOpt = False) -> None:
    """List a repository's tags."""
    repository = _repository(repo)
    address = _registry(registry)
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
    address = _registry(registry)
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
    address = _registry(registry)
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


@registry_app.command("gc")
def gc(
    name: NameOpt = "myregistry",
    dry_run: DryRunOpt = False,
    delete_untagged: Annotated[bool, typer.Option("--delete-untagged")] = False,
    json: JsonOpt = False,
) -> None:
    """Garbage-collect the registry's storage (stopped meanwhile, then started again);
    --delete-untagged refuses when it would delete the images of an index."""
    validate_container(name)
    from dockops.core.registry_server.gc import garbage_collect
    from dockops.engine.address import get_client

    result = garbage_collect(
        get_client(long_running=True), name, dry_run=dry_run, delete_untagged=delete_untagged
    )

    def count(n: int | None) -> str:  # None: the collector's log said no number we know
        return "an unknown number of" if n is None else str(n)

    freed = "unknown" if result.freed_bytes is None else human_size(result.freed_bytes)
    render.emit(
        result,
        render.output_mode(json),
        summary=f"{'dry run: ' if dry_run else ''}{count(result.blobs_eligible)} blobs and "
        f"{count(result.manifests_eligible)} manifests eligible for deletion"
        + ("" if dry_run else f"; freed {freed}"),
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
    address = _registry(registry)
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
    address = _registry(registry)
    from dockops.core.registry.push import push_private as push_core
    from dockops.core.registry.push import resolve_via, target

    resolve_via(via)
    target(reference, address, as_)  # a bad name fails before the engine is asked
    result = streamed(
        lambda client, report: push_core(
            client,
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
