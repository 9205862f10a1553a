"""cron install/remove: the cron.d entries of prune-dangling and prune-images."""

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from dockops import render
from dockops.cli.common import JsonOpt
from dockops.errors import InvalidInput

cron_app = typer.Typer(
    help="Install or remove the cron entries of prune-dangling and prune-images.",
    no_args_is_help=True,
)


def _current_user() -> str:
    import getpass

    return getpass.getuser()


def _dockops_argv() -> list[str]:
    """How cron should start this very dockops: its absolute path, or python -m dockops."""
    launched = Path(sys.argv[0])
    if launched.name == "dockops" and launched.exists():
        return [str(launched.resolve())]
    found = shutil.which("dockops")
    return [str(Path(found).resolve())] if found else [sys.executable, "-m", "dockops"]


def _refuse_foreign(job: str, given: dict[str, object]) -> None:
    """One line naming the first option that belongs to the other job."""
    for flag, value in given.items():
        if value is not None and value != []:
            other = "prune-images" if job == "prune-dangling" else "prune-dangling"
            raise InvalidInput(f"{flag} is an option of {other}, not of {job}")


def _images_args(
    reference: list[str],
    keep_last: int | None,
    unused_for: str | None,
    max_disk: str | None,
    keep: list[str],
) -> list[str]:
    """prune-images' rules on its job line, checked by the code the run checks them with."""
    from dockops.core.cleanup import cron
    from dockops.core.cleanup.limits import parse_disk_limit, require_a_rule
    from dockops.units import parse_duration

    require_a_rule(keep_last, unused_for, max_disk)
    args: list[str] = []
    for text in reference:
        args += ["--reference", _glob("--reference", text)]
    if keep_last is not None:
        args += ["--keep-last", str(keep_last)]
    if unused_for is not None:
        parse_duration(unused_for)
        args += ["--unused-for", unused_for]
    if max_disk is not None:
        args += ["--max-disk", cron.validate_text("--max-disk", parse_disk_limit(max_disk).text)]
    for text in keep:
        args += ["--keep", _glob("--keep", text)]
    return args


def _glob(flag: str, text: str) -> str:
    from dockops.core.cleanup import cron

    if not text:
        raise InvalidInput(f"{flag} needs a pattern, e.g. 'myapp/*'")
    return cron.validate_text(flag, text)


@cron_app.command("install")
def cron_install(
    job: Annotated[str, typer.Argument(metavar="JOB", help="prune-dangling or prune-images.")],
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            metavar="CRON",
            help="Default: 17 3 * * * (prune-dangling), 41 * * * * (prune-images: hourly, so "
            "that it sees each container's use in the engine's events).",
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DUR",
            help="prune-dangling: only images older than this (default 24h).",
        ),
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            metavar="GLOB",
            help="prune-images: only these references (repeatable).",
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last",
            min=0,
            help="prune-images: keep the N most recently used of each repository.",
        ),
    ] = None,
    unused_for: Annotated[
        str | None,
        typer.Option(
            "--unused-for",
            metavar="DUR",
            help="prune-images: keep what was used more recently.",
        ),
    ] = None,
    max_disk: Annotated[
        str | None,
        typer.Option(
            "--max-disk",
            metavar="SIZE|PCT%",
            help="prune-images: remove the least recently used until images fit.",
        ),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            metavar="GLOB",
            help="prune-images: never these references (repeatable).",
        ),
    ] = None,
    usage_file: Annotated[
        Path | None,
        typer.Option("--usage-file", help="prune-images: its record of image use."),
    ] = None,
    keep_label: Annotated[
        list[str] | None,
        typer.Option("--keep-label", metavar="K[=V]", help="Keep images with this label."),
    ] = None,
    lock_file: Annotated[
        Path | None, typer.Option("--lock-file", help="The job's lock (default: its own).")
    ] = None,
    metrics_file: Annotated[
        Path | None,
        typer.Option("--metrics-file", help="The job writes Prometheus textfile metrics here."),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option("--log-file", help="Append output here, an absolute path (default: syslog)."),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Run as (default: you).")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Default /etc/cron.d/dockops (prune-dangling), "
            "/etc/cron.d/dockops-prune-images (prune-images).",
        ),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Write a cron.d entry that runs the job quietly with these options; idempotent.

    Each job has a file of its own, so both can be installed. The options are checked as the
    job itself checks them, so an entry cron would run into a usage error is never written.
    """
    from dockops.core.cleanup import cron
    from dockops.core.cleanup.dangling import parse_label_rule
    from dockops.units import parse_duration

    chosen = cron.job(job)
    if chosen.name == cron.PRUNE_DANGLING:
        _refuse_foreign(
            chosen.name,
            {
                "--reference": reference,
                "--keep-last": keep_last,
                "--unused-for": unused_for,
                "--max-disk": max_disk,
                "--keep": keep,
                "--usage-file": usage_file,
            },
        )
        age = "24h" if older_than is None else older_than
        parse_duration(age)
        rules = ["--older-than", age]
    else:
        _refuse_foreign(chosen.name, {"--older-than": older_than})
        rules = _images_args(reference or [], keep_last, unused_for, max_disk, keep or [])
    runner = _dockops_argv()
    command = [*runner, chosen.name, "--quiet", *rules]
    for text in keep_label or []:
        command += ["--keep-label", str(parse_label_rule(text))]
    files = (("--lock-file", lock_file), ("--metrics-file", metrics_file))
    for flag, value in (*files, ("--usage-file", usage_file)):
        if value is not None:
            command += [flag, str(cron.validate_path(flag, value))]
    run_as = _current_user() if user is None else user
    content = cron.render_entry(
        job=chosen,
        schedule=cron.validate_schedule(chosen.schedule if schedule is None else schedule),
        user=run_as,
        command=command,
        env=os.environ,
        log_file=log_file,
    )
    cron.check_runner(Path(runner[0]), cron.validate_user(run_as))
    result = cron.install(file or chosen.file, content)
    render.emit(
        result, render.output_mode(json), summary=f"{result.action} {result.path}: {result.entry}"
    )


@cron_app.command("remove")
def cron_remove(
    job: Annotated[
        str,
        typer.Argument(metavar="JOB", help="prune-dangling (the default) or prune-images."),
    ] = "prune-dangling",
    file: Annotated[
        Path | None, typer.Option("--file", help="Default: the job's, as cron install says.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Remove the job's cron.d entry (only one that dockops wrote for that job)."""
    from dockops.core.cleanup import cron

    chosen = cron.job(job)
    result = cron.remove(file or chosen.file, chosen)
    render.emit(result, render.output_mode(json), summary=f"{result.action} {result.path}")


def register(app: typer.Typer) -> None:
    app.add_typer(cron_app, name="cron")
