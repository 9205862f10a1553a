"""Prometheus textfile-collector metrics for prune-dangling and prune-images (node_exporter
reads the file). Each command has its own names, dockops_prune_* and dockops_prune_images_*:
alerts written on the first must not change meaning."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from dockops.core.cleanup.dangling import PruneResult

_LAST_SUCCESS = "dockops_prune_last_success_timestamp_seconds"
_IMAGES = "dockops_prune_images"


class _Removal(Protocol):
    @property
    def delete(self) -> bool: ...  # the image went; False: only `tags` were untagged
    @property
    def tags(self) -> Sequence[str]: ...


class _Kept(Protocol):
    @property
    def kind(self) -> str: ...


class _Budget(Protocol):
    @property
    def shortfall(self) -> int: ...


class PruneImagesOutcome(Protocol):
    """What the metrics read of a prune-images run (its result has these and more)."""

    @property
    def removed(self) -> Sequence[_Removal]: ...
    @property
    def kept(self) -> Sequence[_Kept]: ...
    @property
    def failed(self) -> Sequence[object]: ...
    @property
    def reclaimed_bytes(self) -> int: ...
    @property
    def duration_seconds(self) -> float: ...
    @property
    def budget(self) -> _Budget | None: ...


def _previous_success(path: Path, name: str = _LAST_SUCCESS) -> float | None:
    """The last success time already in the file, kept across a failed run."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name:
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
    _last_success(registry, path, _LAST_SUCCESS, success)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def write_prune_images_metrics(path: Path, result: PruneImagesOutcome, *, success: bool) -> None:
    """Write a prune-images run's figures atomically, as write_prune_metrics does.

    `dockops_prune_images_over_budget_bytes` is written only for a run with --max-disk: what
    the images still hold beyond it (0 when the budget was reached), so an alert can tell a
    host whose kept images alone exceed the budget.
    """
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    deleted = sum(1 for r in result.removed if r.delete)
    untagged = sum(len(r.tags) for r in result.removed)
    figures: list[tuple[str, str, float]] = [
        ("removed_images", "Images the last run deleted.", deleted),
        (
            "untagged_references",
            "References (tags) the last run removed, those of deleted images included.",
            untagged,
        ),
        ("reclaimed_bytes", "Bytes freed by the last run.", result.reclaimed_bytes),
        (
            "failed_removals",
            "Removals (deletes or untags) the last run could not do.",
            len(result.failed),
        ),
        ("duration_seconds", "Wall time of the last run.", result.duration_seconds),
    ]
    if result.budget is not None:
        figures.append(
            (
                "over_budget_bytes",
                "Bytes the images still use beyond --max-disk after the last run (0: within).",
                result.budget.shortfall,
            )
        )
    for name, text, value in figures:
        Gauge(f"{_IMAGES}_{name}", text, registry=registry).set(value)
    kept = Gauge(
        f"{_IMAGES}_kept_references",
        "References the last run kept, by the rule that kept each.",
        ["reason"],
        registry=registry,
    )
    for kind, count in Counter(k.kind for k in result.kept).items():
        kept.labels(reason=kind).set(count)
    _last_success(registry, path, f"{_IMAGES}_last_success_timestamp_seconds", success)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)


def _last_success(registry: CollectorRegistry, path: Path, name: str, success: bool) -> None:
    from prometheus_client import Gauge

    last = time.time() if success else _previous_success(path, name)
    if last is not None:
        Gauge(
            name, "Unix time of the last run that removed everything it planned.", registry=registry
        ).set(last)
