"""The registry's own containers: registry up/secure/down/status/gc (cli/registry.py puts them
under `dockops registry`, beside the commands that read and prune its content)."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from dockops import render
from dockops.cli.common import DryRunOpt, JsonOpt, NameOpt, images, read_password
from dockops.errors import InvalidInput
from dockops.reference import validate_container, validate_registry
from dockops.units import human_size

NetworkOpt = Annotated[str, typer.Option("--network", metavar="bridge|host")]


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
    from dockops.core.registry_server.deploy import registry_up
    from dockops.core.registry_server.registry_container import RegistrySpec
    from dockops.engine import connect

    spec = RegistrySpec(
        name=name,
        image=image,
        port=port,
        bind=bind,
        network=network,
        data=str(data.absolute()) if data is not None else None,
    )
    engine = connect(long_running=True)
    result = registry_up(engine, spec, ensure_image=lambda ref: pull_image(engine, ref))
    update_config(registry=result.address)
    render.emit(
        result,
        render.output_mode(json),
        summary=f"registry {result.name} {result.state} at {result.address} "
        f"(data: {result.data}); default registry is now {result.address}",
    )


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
    from dockops.core.registry_server.registry_container import hostport

    validate_registry(hostport(host, port))
    password = read_password(password_stdin, confirm=True) if user is not None else None
    if password_stdin and user is None:
        raise InvalidInput("--password-stdin needs --user")
    from dockops.config import config_path
    from dockops.core.registry_server.secure import SecureSpec, secure_registry
    from dockops.engine import connect

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
        connect(long_running=True),
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


def down(
    name: NameOpt = "myregistry",
    purge: Annotated[bool, typer.Option("--purge", help="Also remove its data volume.")] = False,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Stop and remove the registry (and its frontend and network)."""
    validate_container(name)
    from dockops.core.registry_server.deploy import registry_down
    from dockops.engine import connect

    result = registry_down(connect(), name, purge=purge, dry_run=dry_run)
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


def status(name: NameOpt = "myregistry", json: JsonOpt = False) -> None:
    """Container state, address, TLS, and whether the daemon trusts it."""
    validate_container(name)
    from dockops.core.registry_server.status import registry_status
    from dockops.engine import connect

    result = registry_status(connect(), name)
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
    from dockops.engine import connect

    result = garbage_collect(
        connect(long_running=True), name, dry_run=dry_run, delete_untagged=delete_untagged
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
