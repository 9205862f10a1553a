"""dockops doctor: is everything dockops needs in place?"""

import typer

from dockops import render
from dockops.cli.common import JsonOpt, RegistryOpt
from dockops.errors import NotBuilt
from dockops.render import Column

CHECK_COLUMNS = (
    Column("CHECK", lambda c: c.name),
    Column("STATUS", lambda c: "ok" if c.ok else "FAIL"),
    Column("DETAIL", lambda c: c.detail),
)


def doctor(registry: RegistryOpt = None, json: JsonOpt = False) -> None:
    """Check the engine (and, once built, the default registry); exit with the first failure."""
    if registry is not None:
        # Registry checks land with the private-registry issue; say so rather than skip them.
        raise NotBuilt("doctor --registry")
    from dockops.core.doctor import run_doctor
    from dockops.engine import get_client

    report = run_doctor(get_client)
    render.emit(report, render.output_mode(json), columns=CHECK_COLUMNS, rows=report.checks)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
