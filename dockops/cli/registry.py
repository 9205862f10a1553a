"""The private registry: registry up/secure/down/status/ls/tags/show/rm/gc/prune, login,
logout, push-private."""

from pathlib import Path
from typing import Annotated

import typer

from dockops.cli.common import DryRunOpt, JsonOpt, NameOpt, RegistryOpt, images
from dockops.errors import NotBuilt
from dockops.reference import validate_registry

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
    raise NotBuilt("registry up")


@registry_app.command("secure")
def secure(
    host: Annotated[str, typer.Option("--host")],
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 443,
    name: NameOpt = "myregistry",
    user: Annotated[str | None, typer.Option("--user")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    certs_dir: Annotated[Path | None, typer.Option("--certs-dir")] = None,
    certs_d: Annotated[Path, typer.Option("--certs-d")] = Path("/etc/docker/certs.d"),
    frontend_image: Annotated[str, typer.Option("--frontend-image")] = "nginx:stable",
    network: NetworkOpt = "bridge",
    trust: Annotated[bool, typer.Option("--trust/--no-trust")] = True,
    rotate: Annotated[bool, typer.Option("--rotate", help="Make a new CA.")] = False,
    json: JsonOpt = False,
) -> None:
    """TLS (self-signed CA) and basic auth in front of the registry, through nginx."""
    images([frontend_image])
    raise NotBuilt("registry secure")


@registry_app.command("down")
def down(
    name: NameOpt = "myregistry",
    purge: Annotated[bool, typer.Option("--purge", help="Also remove its data.")] = False,
) -> None:
    """Stop and remove the registry (and its frontend)."""
    raise NotBuilt("registry down")


@registry_app.command("status")
def status(name: NameOpt = "myregistry", json: JsonOpt = False) -> None:
    """Container state, address, TLS, and whether the daemon trusts it."""
    raise NotBuilt("registry status")


@registry_app.command("ls")
def ls(
    registry: RegistryOpt = None,
    filter_: Annotated[str | None, typer.Option("--filter", metavar="GLOB")] = None,
    json: JsonOpt = False,
) -> None:
    """List repositories (the catalog, all pages)."""
    raise NotBuilt("registry ls")


@registry_app.command("tags")
def tags(repo: str, registry: RegistryOpt = None, json: JsonOpt = False) -> None:
    """List a repository's tags."""
    raise NotBuilt("registry tags")


@registry_app.command("show")
def show(reference: str, registry: RegistryOpt = None, json: JsonOpt = False) -> None:
    """Digest, layers, total size and creation time of REPO:TAG."""
    images([reference])
    raise NotBuilt("registry show")


@registry_app.command("rm")
def rm(
    reference: str,
    registry: RegistryOpt = None,
    force: Annotated[bool, typer.Option("--force")] = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Delete REPO:TAG by digest (refuses when other tags share it, unless --force)."""
    images([reference])
    raise NotBuilt("registry rm")


@registry_app.command("gc")
def gc(
    name: NameOpt = "myregistry",
    dry_run: DryRunOpt = False,
    delete_untagged: Annotated[bool, typer.Option("--delete-untagged")] = False,
) -> None:
    """Garbage-collect the registry's storage (read-only or stopped meanwhile)."""
    raise NotBuilt("registry gc")


@registry_app.command("prune")
def prune(
    repo: str,
    keep: Annotated[int | None, typer.Option("--keep", min=0)] = None,
    older_than: Annotated[str | None, typer.Option("--older-than", metavar="DUR")] = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
) -> None:
    """Retention: keep the newest N tags of REPO."""
    raise NotBuilt("registry prune")


def login(
    registry: Annotated[str, typer.Argument(metavar="REGISTRY")],
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Check credentials against the registry, then store them where docker reads them."""
    validate_registry(registry)
    raise NotBuilt("login")


def logout(registry: Annotated[str, typer.Argument(metavar="REGISTRY")]) -> None:
    """Forget the stored credentials of REGISTRY."""
    validate_registry(registry)
    raise NotBuilt("logout")


def push_private(
    reference: str,
    registry: RegistryOpt = None,
    as_: Annotated[str | None, typer.Option("--as", metavar="NAME[:TAG]")] = None,
    keep_tag: Annotated[bool, typer.Option("--keep-tag")] = False,
    json: JsonOpt = False,
) -> None:
    """Tag REF for the private registry, push it, verify the digest, untag."""
    images([reference])
    raise NotBuilt("push-private")


def register(app: typer.Typer) -> None:
    app.add_typer(registry_app, name="registry")
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("push-private")(push_private)
