"""Cron-grade cleanup: dangling, prune-dangling."""

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from dockops import render
from dockops.cli.common import DryRunOpt, JsonOpt, QuietOpt
from dockops.errors import PartialFailure
from dockops.render import Column
from dockops.units import human_age, human_size, parse_duration, short_id

OlderThanOpt = Annotated[
    str | None,
    typer.Option("--older-than", metavar="DUR", help="Only images older than 30m, 12h, 7d..."),
]
KeepLabelOpt = Annotated[
    list[str] | None,
    typer.Option("--keep-label", metavar="K[=V]", help="Keep images with this label (repeatable)."),
]
LockFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--lock-file",
        help="Lock held during the run (default: /run/dockops for root, else $XDG_RUNTIME_DIR).",
    ),
]
MetricsFileOpt = Annotated[
    Path | None,
    typer.Option("--metrics-file", help="Write Prometheus textfile metrics here (atomically)."),
]

DANGLING_COLUMNS = (
    Column("IMAGE ID", lambda d: short_id(d.id)),
    Column("CREATED", lambda d: human_age(d.created)),
    Column("SIZE", lambda d: human_size(d.size)),
    Column("CONTAINERS", lambda d: d.containers),
)
PRUNE_COLUMNS = (
    Column("IMAGE ID", lambda row: short_id(row[0])),
    Column("ACTION", lambda row: row[1]),
    Column("SIZE", lambda row: row[2]),
    Column("REASON", lambda row: row[3]),
)


def dangling(json: JsonOpt = False) -> None:
    """List dangling images: id, created, size, containers holding them."""
    from dockops.core.cleanup.dangling import list_dangling
    from dockops.engine import connect

    render.emit(list_dangling(connect()), render.output_mode(json), columns=DANGLING_COLUMNS)


def prune_dangling(
    older_than: OlderThanOpt = None,
    keep_label: KeepLabelOpt = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    lock_file: LockFileOpt = None,
    metrics_file: MetricsFileOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Deletes at once.")] = 4,
) -> None:
    """Remove dangling images no container uses; safe to run from cron.

    Plans from one snapshot and removes exactly that plan (--dry-run shows it); a second run
    while one holds the lock exits 75 at once.
    """
    from dockops.core.cleanup.dangling import parse_label_rule, prune_dangling
    from dockops.core.cleanup.lock import default_lock_path, exclusive
    from dockops.engine import connect

    output = render.output_mode(json, quiet)
    age = parse_duration(older_than) if older_than is not None else None
    rules = [parse_label_rule(text) for text in keep_label or []]
    if dry_run:  # read-only: no lock, so a look is possible while a real run works
        result = prune_dangling(connect(), older_than=age, keep_labels=rules, dry_run=True)
    else:
        with exclusive(lock_file or default_lock_path("prune-dangling")):
            result = prune_dangling(connect(), older_than=age, keep_labels=rules, workers=workers)
            if metrics_file is not None:
                from dockops.core.cleanup.metrics import write_prune_metrics

                write_prune_metrics(metrics_file, result, success=not result.failed)
    rows: list[tuple[str, str, str, str]] = [
        (r.id, "would remove" if dry_run else "removed", human_size(r.size), "")
        for r in result.removed
    ]
    rows += [(k.id, "kept", "", k.reason) for k in result.kept]
    rows += [(f.id, "FAILED", "", f.error) for f in result.failed]
    render.emit(
        result, output, columns=PRUNE_COLUMNS if rows else (), rows=rows, summary=_summary(result)
    )
    if result.failed:
        raise PartialFailure(
            f"{len(result.failed)} of {len(result.removed) + len(result.failed)} planned "
            "images could not be removed"
        )


def _summary(result: Any) -> str:
    verb = "Would remove" if result.dry_run else "Removed"
    text = (
        f"{verb} {len(result.removed)} dangling image{'s' if len(result.removed) != 1 else ''}, "
        f"{'reclaiming' if result.dry_run else 'reclaimed'} {human_size(result.reclaimed_bytes)}"
    )
    if result.kept:
        counts = Counter(k.kind for k in result.kept)
        text += (
            f"; kept {len(result.kept)} ("
            + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
            + ")"
        )
    if result.failed:
        text += f"; {len(result.failed)} failed"
    return text + "."


def register(app: typer.Typer) -> None:
    app.command("dangling")(dangling)
    app.command("prune-dangling")(prune_dangling)
