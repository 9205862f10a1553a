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


def _kept_and_failed(result: Any, noun: str) -> str:
    """ "; kept 3 (2 in-use, 1 keep-last); 1 failed": what a run kept, by reason, and failed."""
    text = ""
    if result.kept:
        counts = Counter(k.kind for k in result.kept)
        by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        text += f"; kept {len(result.kept)}{noun} ({by_kind})"
    if result.failed:
        text += f"; {len(result.failed)} failed"
    return text


def _summary(result: Any) -> str:
    verb = "Would remove" if result.dry_run else "Removed"
    text = (
        f"{verb} {len(result.removed)} dangling image{'s' if len(result.removed) != 1 else ''}, "
        f"{'reclaiming' if result.dry_run else 'reclaimed'} {human_size(result.reclaimed_bytes)}"
    )
    text += _kept_and_failed(result, "")
    return text + "."


IMAGES_COLUMNS = (
    Column("IMAGE ID", lambda row: short_id(row[0])),
    Column("REFERENCE", lambda row: row[1]),
    Column("ACTION", lambda row: row[2]),
    Column("SIZE", lambda row: row[3]),
    Column("LAST USE", lambda row: row[4]),
    Column("REASON", lambda row: row[5]),
)


def prune_images(
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference",
            metavar="GLOB",
            help="Only repositories or references that match are candidates (repeatable; "
            "default every tagged image).",
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last", metavar="N", min=0, help="Per repository, keep the N most recently used."
        ),
    ] = None,
    unused_for: Annotated[
        str | None,
        typer.Option("--unused-for", metavar="DUR", help="Only images unused for 30m, 12h, 7d..."),
    ] = None,
    max_disk: Annotated[
        str | None,
        typer.Option(
            "--max-disk",
            metavar="SIZE",
            help="Evict least recently used until the images take no more than 20GB, or 80% "
            "of the engine's filesystem.",
        ),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", metavar="GLOB", help="Never remove references that match."),
    ] = None,
    keep_label: KeepLabelOpt = None,
    dry_run: DryRunOpt = False,
    json: JsonOpt = False,
    quiet: QuietOpt = False,
    lock_file: LockFileOpt = None,
    metrics_file: MetricsFileOpt = None,
    usage_file: Annotated[
        Path | None,
        typer.Option(
            "--usage-file",
            help="The usage record kept between runs (default: /var/lib/dockops/usage/ for "
            "root, else $XDG_STATE_HOME/dockops/usage/; one file per engine).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32, help="Images at once.")] = 4,
) -> None:
    """Remove tagged images by retention rules; safe to run from cron.

    Keeps, per repository, the most recently used (--keep-last), what was used lately
    (--unused-for), and, under --max-disk, evicts the least recently used first until the
    images fit. Never touches an image a container uses, a --keep-label or a --keep match.
    Plans from one reading of the engine and carries out exactly that plan (--dry-run shows
    it); a second run while one holds the lock exits 75 at once.
    """
    from dockops.core.cleanup.dangling import parse_label_rule
    from dockops.core.cleanup.limits import check_globs, parse_disk_limit, require_a_rule
    from dockops.core.cleanup.lock import default_lock_path, exclusive
    from dockops.core.cleanup.prune_images import prune_images as run
    from dockops.core.cleanup.retention import RetentionRules
    from dockops.engine import connect

    output = render.output_mode(json, quiet)
    require_a_rule(keep_last, unused_for, max_disk)
    rules = RetentionRules(
        references=check_globs("--reference", reference),
        keep_last=keep_last,
        unused_for=parse_duration(unused_for) if unused_for is not None else None,
        keep_labels=tuple(parse_label_rule(text) for text in keep_label or []),
        keep=check_globs("--keep", keep),
    )
    limit = parse_disk_limit(max_disk) if max_disk is not None else None
    if dry_run:  # read-only: no lock, so a look is possible while a real run works
        result = run(connect(), rules, disk_limit=limit, record_path=usage_file, dry_run=True)
    else:
        with exclusive(lock_file or default_lock_path("prune-images")):
            result = run(
                connect(), rules, disk_limit=limit, record_path=usage_file, workers=workers
            )
            if metrics_file is not None:
                from dockops.core.cleanup.metrics import write_prune_images_metrics

                write_prune_images_metrics(metrics_file, result, success=not result.failed)
    render.emit(
        result,
        output,
        columns=IMAGES_COLUMNS,
        rows=_image_rows(result),
        summary=_images_summary(result),
    )
    if result.failed:
        raise PartialFailure(
            f"{len(result.failed)} of {len(result.removed) + len(result.failed)} planned "
            "removals could not be done"
        )


def _image_rows(result: Any) -> list[tuple[str, str, str, str, str, str]]:
    verb = ("would remove", "would untag") if result.dry_run else ("removed", "untagged")
    rows = [
        (
            e.image,
            ", ".join(e.tags),
            verb[0] if e.delete else verb[1],
            human_size(e.freed) if e.delete else "",
            f"{human_age(e.last_use.when)} ({e.last_use.source})",
            e.reason,
        )
        for e in result.removed
    ]
    rows += [
        (
            k.image,
            k.reference,
            "kept",
            "",
            f"{human_age(k.last_use.when)} ({k.last_use.source})",
            k.reason,
        )
        for k in result.kept
    ]
    rows += [(f.id, "", "FAILED", "", "", f.error) for f in result.failed]
    return rows


def _images_summary(result: Any) -> str:
    deleted = [e for e in result.removed if e.delete]
    untagged = [e for e in result.removed if not e.delete]
    verb = "Would remove" if result.dry_run else "Removed"
    text = (
        f"{verb} {len(deleted)} image{'s' if len(deleted) != 1 else ''}"
        + (f" and untag {len(untagged)} more" if untagged else "")
        + f", {'reclaiming' if result.dry_run else 'reclaimed'} "
        + human_size(result.reclaimed_bytes)
    )
    text += _kept_and_failed(result, " reference" if len(result.kept) == 1 else " references")
    budget = result.budget
    if budget is not None:
        text += (
            f". --max-disk {human_size(budget.limit)}: images take {human_size(budget.before)}, "
            f"{human_size(budget.after)} after this plan"
        )
        if budget.shortfall:
            held = ", ".join(f"{kind} {human_size(n)}" for kind, n in budget.held)
            text += f"; {human_size(budget.shortfall)} over that it cannot free (held: {held})"
        else:
            text += ", within it"
    if "damaged" in result.usage_record:
        text += f". Usage record {result.usage_record}"
    return text + "."


def register(app: typer.Typer) -> None:
    app.command("dangling")(dangling)
    app.command("prune-dangling")(prune_dangling)
    app.command("prune-images")(prune_images)
