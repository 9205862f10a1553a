"""Prometheus textfile-collector metrics for prune-dangling (node_exporter reads the file)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockops.core.cleanup.dangling import PruneResult

_LAST_SUCCESS = "dockops_prune_last_success_timestamp_seconds"


def _previous_success(path: Path) -> float | None:
    """The last success time already in the file, kept across a failed run."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == _LAST_SUCCESS:
                    return float(sample.value)
    except ValueError:
        return None
    return None


def write_prune_metrics(path: Path, result: PruneResult, *, success: bool) -> None:
    """Write the run's figures atomically (prometheus_client writes a temp file and renames).

    Args:
        path: the .prom file in node_exporter's textfile directory.
        result: what the run did.
        success: whether the run counts as a success (no failures); if not, the previous
            last-success time is carried over so alerts on staleness keep working.
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    for name, text, value in (
        (
            "dockops_prune_removed_images",
            "Dangling images removed by the last run.",
            len(result.removed),
        ),
        ("dockops_prune_reclaimed_bytes", "Bytes freed by the last run.", result.reclaimed_bytes),
        (
            "dockops_prune_failed_images",
            "Images the last run could not remove.",
            len(result.failed),
        ),
        ("dockops_prune_duration_seconds", "Wall time of the last run.", result.duration_seconds),
    ):
        Gauge(name, text, registry=registry).set(value)
    kept = Gauge(
        "dockops_prune_kept_images",
        "Dangling images the last run kept, by reason.",
        ["reason"],
        registry=registry,
    )
    for kind, count in Counter(k.kind for k in result.kept).items():
        kept.labels(reason=kind).set(count)
    last = time.time() if success else _previous_success(path)
    if last is not None:
        Gauge(
            _LAST_SUCCESS,
            "Unix time of the last run that removed everything it planned.",
            registry=registry,
        ).set(last)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
