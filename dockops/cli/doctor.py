"""dockops doctor: is everything dockops needs in place?"""

import typer

from dockops import render
from dockops.cli.common import JsonOpt, RegistryOpt
from dockops.render import Column

CHECK_COLUMNS = (
    Column("CHECK", lambda c: c.name),
    Column("STATUS", lambda c: ("WARN" if c.warning else "ok") if c.ok else "FAIL"),
    Column("DETAIL", lambda c: c.detail),
)


def doctor(registry: RegistryOpt = None, json: JsonOpt = False) -> None:
    """Check the engine and the default registry; exit with the first failure."""
    import dataclasses

    from dockops.config import resolve_registry
    from dockops.core.doctor import backend_checks, registry_checks, run_doctor
    from dockops.engine import connect

    address = resolve_registry(registry)
    report = run_doctor(connect)
    if address is not None:
        checks = report.checks + registry_checks(address)
        if report.checks[0].ok:  # the engine answers: is a frontend of ours serving address?
            checks += backend_checks(connect, address)
        report = dataclasses.replace(report, registry=address, checks=checks)
    render.emit(report, render.output_mode(json), columns=CHECK_COLUMNS, rows=report.checks)
    raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
