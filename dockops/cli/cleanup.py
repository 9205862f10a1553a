"""Cron-grade cleanup: dangling, prune-dangling, cron install/remove."""

from pathlib import Path
from typing import Annotated

import typer

from dockops.cli.common import DryRunOpt, JsonOpt, QuietOpt, not_built

OlderThanOpt = Annotated[
    str | None,
    typer.Option("--older-than", metavar="DUR", help="Only images older than 30m, 12h, 7d..."),
]


def dangling(json: JsonOpt = False) -> None:
    """List dangling images: id, created, size, containers holding them."""
    raise not_built("dangling")


def prune_dangling(
    older_than: OlderThanOpt = None,
    keep_label: Annotated[
        list[str] | None,
        typer.Option("--keep-label", metavar="K[=V]", help="Keep images with this label."),
    ] = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    lock_file: Annotated[Path | None, typer.Option("--lock-file")] = None,
    metrics_file: Annotated[Path | None, typer.Option("--metrics-file")] = None,
) -> None:
    """Remove dangling images no container uses; safe to run from cron."""
    raise not_built("prune-dangling")


cron_app = typer.Typer(
    help="Install or remove the prune-dangling cron entry.", no_args_is_help=True
)


@cron_app.command("install")
def cron_install(
    job: Annotated[str, typer.Argument(metavar="prune-dangling")],
    schedule: Annotated[str, typer.Option("--schedule", metavar="CRON")] = "17 3 * * *",
    older_than: OlderThanOpt = "24h",
    file: Annotated[Path | None, typer.Option("--file")] = None,
) -> None:
    """Write a cron.d entry that runs prune-dangling quietly."""
    raise not_built("cron install")


@cron_app.command("remove")
def cron_remove(file: Annotated[Path | None, typer.Option("--file")] = None) -> None:
    """Remove the cron.d entry."""
    raise not_built("cron remove")


def register(app: typer.Typer) -> None:
    app.command("dangling")(dangling)
    app.command("prune-dangling")(prune_dangling)
    app.add_typer(cron_app, name="cron")
